/* Chart annotations: the events that explain a curve, as marks on every time chart's axis.

   One store per page fetches /api/v1/annotations for the page's range (`data-annotations` on the
   page's list) and hands the marks to every chart: a uPlot plugin draws them as vertical lines
   in its `draw` hook, ECharts charts get them as a `markLine`. Hovering a mark shows what it is
   (kind, title, time); clicking it opens its change, device or finding. The same marks are
   listed as links under the charts, the way to them by keyboard and screen reader.
   Used as `window.fleetopsAnnotations` by diagnosis.js and devices.js. */
(function () {
  "use strict";

  var API = "/api/v1/annotations";
  var LABELS = { change: "change", link: "link switch", isolation: "device", finding: "finding" };
  var COLORS = { change: "--info", link: "--accent", isolation: "--warn", finding: "--bad" };
  var NEAR = 5; // px: how close the pointer must be to a mark to pick it

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function color(mark) {
    if (mark.kind === "finding" && mark.severity !== "critical") {
      return css(mark.severity === "warning" ? "--warn" : "--muted");
    }
    return css(COLORS[mark.kind]) || "#888";
  }

  function utc(iso) {
    return new Date(iso).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  function describe(mark) {
    return LABELS[mark.kind] + " " + mark.event + ": " + mark.title +
      (mark.detail ? " (" + mark.detail + ")" : "") + " · " + utc(mark.at);
  }

  // --- the store: one fetch per refresh, shared by the page's charts ----------------------------

  function Store(query) {
    this.query = query || "";
    this.items = [];
    this.listeners = [];
  }

  Store.prototype.subscribe = function (listener) { this.listeners.push(listener); };

  // Fetch for `query` (the page's range, or from/to of a chart); keeps the last marks on failure.
  Store.prototype.load = function (query) {
    var self = this;
    if (query !== undefined) { self.query = query; }
    var url = API + (self.query ? "?" + self.query : "");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (page) {
        self.items = page.items.map(function (m) { m.t = Date.parse(m.at) / 1000; return m; });
        self.truncated = page.truncated;
        self.listeners.forEach(function (f) { f(self.items); });
      });
  };

  function nearest(items, x, toPos) {
    var best = null;
    var gap = NEAR + 1;
    items.forEach(function (m) {
      var d = Math.abs(toPos(m) - x);
      if (d < gap) { gap = d; best = m; }
    });
    return best;
  }

  // --- uPlot --------------------------------------------------------------------------------------

  function tip(parent) {
    var node = document.createElement("div");
    node.className = "annotation-tip";
    node.setAttribute("aria-hidden", "true");
    node.hidden = true;
    parent.appendChild(node);
    return node;
  }

  function uplot(store) {
    var hovered = null;
    function cssX(u, m) { return u.valToPos(m.t, "x"); }
    function init(u) {
      var box = tip(u.over);
      u.over.addEventListener("mousemove", function (event) {
        var x = event.clientX - u.over.getBoundingClientRect().left;
        hovered = nearest(store.items, x, function (m) { return cssX(u, m); });
        box.hidden = !hovered;
        u.over.classList.toggle("on-mark", !!hovered);
        if (hovered) {
          box.textContent = describe(hovered);
          box.style.left = Math.min(cssX(u, hovered) + 6, Math.max(u.over.clientWidth - 260, 0)) + "px";
        }
      });
      u.over.addEventListener("mouseleave", function () { box.hidden = true; hovered = null; });
      u.over.addEventListener("click", function () {
        if (hovered) { window.location.href = hovered.href; }
      });
      store.subscribe(function () { u.redraw(false, false); });
    }
    function draw(u) {
      var ctx = u.ctx;
      var top = u.bbox.top;
      var bottom = top + u.bbox.height;
      var shown = [];
      ctx.save();
      store.items.forEach(function (m) {
        var x = Math.round(u.valToPos(m.t, "x", true));
        if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) { return; }
        ctx.strokeStyle = color(m);
        ctx.fillStyle = ctx.strokeStyle;
        ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
        ctx.setLineDash(m.kind === "link" ? [6, 4] : m.event === "started" || m.event === "opened" ? [] : [2, 3]);
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, bottom);
        ctx.stroke();
        ctx.beginPath();  // a flag at the top, to find the line among the curves
        ctx.moveTo(x - 5, top);
        ctx.lineTo(x + 5, top);
        ctx.lineTo(x, top + 7);
        ctx.fill();
        shown.push(Math.round(cssX(u, m)) + ":" + m.href);
      });
      ctx.restore();
      u.root.dataset.marks = shown.join(" ");  // where each mark is drawn (CSS px): for tests
    }
    return { hooks: { init: init, draw: draw } };
  }

  // --- ECharts ------------------------------------------------------------------------------------

  // The `markLine` of a time-axis series (x in ms); `chart` gets a click handler once.
  function markLine(store, chart) {
    if (chart && !chart.fleetopsMarks) {
      chart.fleetopsMarks = true;
      chart.on("click", { componentType: "markLine" }, function (params) {
        var m = store.items[params.dataIndex];
        if (m) { window.location.href = m.href; }
      });
    }
    return {
      silent: false,
      symbol: ["none", "none"],
      animation: false,
      label: { show: false },
      emphasis: { label: { show: true, position: "insideEndTop", formatter: function (p) { return p.name; } } },
      data: store.items.map(function (m) {
        return {
          xAxis: m.t * 1000,
          name: describe(m),
          lineStyle: { color: color(m), width: 1.5, type: m.kind === "link" ? "dashed" : "solid" },
        };
      }),
    };
  }

  // --- the list ----------------------------------------------------------------------------------

  function list(store, root) {
    var items = root.querySelector(".annotation-items");
    var count = root.querySelector("[data-annotation-count]");
    store.subscribe(function (marks) {
      items.replaceChildren();
      marks.slice().reverse().forEach(function (m) {
        var li = document.createElement("li");
        li.className = "mark-key " + m.kind;
        var a = document.createElement("a");
        a.href = m.href;
        a.textContent = m.title;
        var time = document.createElement("time");
        time.dateTime = m.at;
        time.textContent = utc(m.at);
        li.append(time, " ", LABELS[m.kind] + " " + m.event + ": ", a, m.detail ? " (" + m.detail + ")" : "");
        items.appendChild(li);
      });
      count.textContent = "(" + marks.length + (store.truncated ? ", the latest" : "") + ")";
    });
  }

  // The page's store, built from its list element (one per page).
  function forPage() {
    var root = document.querySelector("[data-annotations]");
    var store = new Store(root ? root.dataset.annotations : "");
    if (root) { list(store, root); }
    return store;
  }

  window.fleetopsAnnotations = { Store: Store, forPage: forPage, uplot: uplot, markLine: markLine, describe: describe };
})();
