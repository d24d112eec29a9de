/* Auto-refresh in the URL: the `refresh` picker of a page with time charts.

   The server reads `?refresh=` (off, 5s ... 5m) and renders the picker with it. Choosing another
   value applies at once, without a reload: the URL is rewritten (history.replaceState), so a
   reload or a shared link keeps it, and so are the range picker's links, so switching the range
   keeps it too. The page's script polls through `schedule`, which follows the picker.
   Used as `window.fleetopsRefresh` by diagnosis.js and devices.js. */
(function () {
  "use strict";

  var SECONDS = { off: 0, "5s": 5, "10s": 10, "30s": 30, "1m": 60, "5m": 300 };

  function picker() { return document.querySelector("select[data-refresh]"); }

  // The period chosen now, in seconds (0 = off); `fallback` when the page has no picker.
  function seconds(fallback) {
    var select = picker();
    return select ? SECONDS[select.value] || 0 : fallback;
  }

  function withRefresh(href, value, fallback) {
    var url = new URL(href, window.location.href);
    if (value === fallback) { url.searchParams.delete("refresh"); } else { url.searchParams.set("refresh", value); }
    return url.pathname + url.search + url.hash;
  }

  function apply(select) {
    var fallback = select.dataset.default;
    window.history.replaceState(null, "", withRefresh(window.location.href, select.value, fallback));
    document.querySelectorAll(".range-picker a[href]").forEach(function (a) {
      a.setAttribute("href", withRefresh(a.getAttribute("href"), select.value, fallback));
    });
    document.dispatchEvent(new CustomEvent("fleetops:refresh", { detail: { seconds: SECONDS[select.value] || 0 } }));
  }

  // Run `tick` every chosen period (none when off), restarting when the picker changes.
  function schedule(tick, fallback) {
    var timer = null;
    function start(every) {
      if (timer !== null) { window.clearInterval(timer); timer = null; }
      if (every > 0) { timer = window.setInterval(tick, every * 1000); }
    }
    start(seconds(fallback));
    document.addEventListener("fleetops:refresh", function (event) { start(event.detail.seconds); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = picker();
    if (!select) { return; }
    select.form.addEventListener("submit", function (event) { event.preventDefault(); apply(select); });
    select.addEventListener("change", function () { apply(select); });
  });

  window.fleetopsRefresh = { seconds: seconds, schedule: schedule };
})();
