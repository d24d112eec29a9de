/* Keyboard use of the main tables, on every page: j / ArrowDown and k / ArrowUp move between rows,
   Enter opens the row's first link, Home / End jump to the first and last row; "/" goes to the
   page's filter or search box and Escape leaves it. Keys typed into a form field are left alone. */
(function () {
  "use strict";

  function typing(target) {
    return target.closest && target.closest("input, textarea, select, [contenteditable]");
  }

  function rows() {
    var body = document.querySelector("main table.table tbody");
    if (!body) { return []; }
    return Array.prototype.filter.call(body.rows, function (row) { return row.querySelector("a"); });
  }

  function focusRow(list, index) {
    var row = list[Math.max(0, Math.min(list.length - 1, index))];
    if (!row) { return; }
    row.tabIndex = -1;
    row.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (typing(target)) {
      if (event.key === "Escape") { target.blur(); }
      return;
    }
    if (event.key === "/") {
      var box = document.querySelector('main input[name="selector"], main input[type="search"], main input[name="contains"]');
      if (box) { event.preventDefault(); box.focus(); box.select(); }
      return;
    }
    var list = rows();
    if (!list.length) { return; }
    var current = list.indexOf(target.closest ? target.closest("tr") : null);
    var next = null;
    if (event.key === "j" || event.key === "ArrowDown") { next = current + 1; }
    else if (event.key === "k" || event.key === "ArrowUp") { next = current < 0 ? 0 : current - 1; }
    else if (event.key === "Home" && current >= 0) { next = 0; }
    else if (event.key === "End" && current >= 0) { next = list.length - 1; }
    else if (event.key === "Enter" && current >= 0 && target === list[current]) {
      event.preventDefault();
      list[current].querySelector("a").click();
      return;
    }
    if (next === null) { return; }
    if ((event.key === "ArrowDown" || event.key === "ArrowUp") && current < 0) { return; } // page scroll
    event.preventDefault();
    focusRow(list, next);
  });
})();
