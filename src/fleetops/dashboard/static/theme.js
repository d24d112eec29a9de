/* fleetops theme switch. Loaded (not deferred) in <head> so a saved choice applies before the first
   paint. Without JavaScript the operating system's light/dark preference applies and the toggle
   stays hidden. Kept in a static file because the Content-Security-Policy forbids inline scripts. */
(function () {
  "use strict";
  var KEY = "fleetops-theme";
  var root = document.documentElement;

  function load() {
    try { return window.localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function save(value) {
    try { window.localStorage.setItem(KEY, value); } catch (e) { /* private mode: not kept */ }
  }
  function current() {
    if (root.dataset.theme) { return root.dataset.theme; }
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  var saved = load();
  if (saved === "light" || saved === "dark") { root.dataset.theme = saved; }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      save(next);
    });
  });
})();
