/* fleetops change page: follow a change live, confirm destructive actions.

   The server pushes a `progress` event (SSE, GET /changes/{id}/events) whenever the change or one
   of its hosts moves. On each event this script fetches the page's live fragment and replaces the
   parts (`[data-live]`) that differ, carrying over whatever was typed in their fields. Without
   JavaScript the page is complete and read-only until reloaded. A static file because the
   Content-Security-Policy forbids inline scripts. */
(function () {
  "use strict";

  function same(old, fresh) {
    if (old.dataset.key !== undefined && fresh.dataset.key !== undefined) {
      return old.dataset.key === fresh.dataset.key;
    }
    return old.outerHTML === fresh.outerHTML;
  }

  function carryOver(old, fresh) {
    old.querySelectorAll("textarea[name], input[type=text][name]").forEach(function (field) {
      var twin = fresh.querySelector(field.tagName + '[name="' + field.name + '"]');
      if (twin) { twin.value = field.value; }
    });
  }

  function swap(html) {
    var next = document.createElement("template");
    next.innerHTML = html;
    next.content.querySelectorAll("[data-live][id]").forEach(function (fresh) {
      var old = document.getElementById(fresh.id);
      if (!old || same(old, fresh)) { return; }
      carryOver(old, fresh);
      var focused = old.contains(document.activeElement) ? document.activeElement.name : null;
      old.replaceWith(fresh);
      if (focused) {
        var again = fresh.querySelector('[name="' + focused + '"]');
        if (again) { again.focus(); }
      }
    });
  }

  function follow(root) {
    var indicator = document.getElementById("live-indicator");
    var busy = false;
    var pending = false;

    function show(text, state) {
      if (!indicator) { return; }
      indicator.hidden = false;
      indicator.textContent = text;
      indicator.dataset.state = state;
    }

    function refresh() {
      if (busy) { pending = true; return; }
      busy = true;
      fetch(root.dataset.fragment, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.text();
        })
        .then(swap)
        .catch(function () { show("Update failed", "error"); })
        .finally(function () {
          busy = false;
          if (pending) { pending = false; refresh(); }
        });
    }

    var source = new EventSource(root.dataset.events);
    source.addEventListener("open", function () { show("Live", "on"); });
    source.addEventListener("error", function () {
      // CLOSED: the browser gave up (e.g. the session ended); reloading the page says why.
      var closed = source.readyState === EventSource.CLOSED;
      show(closed ? "Not updating: reload" : "Reconnecting…", closed ? "error" : "off");
    });
    source.addEventListener("progress", function (event) {
      var data = JSON.parse(event.data);
      refresh();
      if (data.terminal) {
        source.close(); // the server ends the stream too; do not let the browser reconnect
        show("Finished", "done");
      }
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-confirm]") : null;
    if (button && !window.confirm(button.dataset.confirm)) { event.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("change-live");
    if (root && !root.hasAttribute("data-terminal") && window.EventSource && window.fetch) {
      follow(root);
    }
  });
})();
