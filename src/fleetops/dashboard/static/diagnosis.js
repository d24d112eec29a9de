/* fleetops diagnosis pages: charts drawn from the JSON API, kept live by polling it.

   The server renders every number and table; this script only draws the charts (uPlot for time
   series, ECharts for the rack x rack heatmap) into elements marked `data-chart`, and, while the
   page's range is relative ("last 15 min"), fetches the series again every few seconds. Each chart
   element carries `data-points` (or `data-cells`): how many windows (cells) it shows now. On the
   log search page it follows new lines when "Live tail" is on. A static file because the
   Content-Security-Policy forbids inline scripts. */
(function () {
  "use strict";

  var API = "/api/v1/diagnosis";
  var MAX_TAIL_ROWS = 1000;

  // --- helpers ----------------------------------------------------------------------------------

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      });
  }

  function join(url, query) {
    if (!query) { return url; }
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + query;
  }

  function seconds(iso) { return Date.parse(iso) / 1000; }

  // The same wording as the server's `duration` helper (logs/pages.py).
  function duration(value, unit) {
    if (value === null || value === undefined) { return "—"; }
    var s = unit === "ms" ? value / 1000 : value;
    if (s < 1) { return Math.round(s * 1000) + " ms"; }
    if (s < 120) { return s.toFixed(1) + " s"; }
    return (s / 60).toFixed(1) + " min";
  }

  function formatter(unit) {
    if (unit === "ms" || unit === "s") {
      return function (v) { return duration(v, unit); };
    }
    return function (v) { return v === null || v === undefined ? "—" : String(Math.round(v * 100) / 100); };
  }

  function ago(iso) {
    var s = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (s < 5) { return "just now"; }
    if (s < 60) { return s + " s ago"; }
    if (s < 3600) { return Math.floor(s / 60) + " min ago"; }
    if (s < 86400) { return Math.floor(s / 3600) + " h ago"; }
    return Math.floor(s / 86400) + " d ago";
  }

  function utc(moment) {
    return new Date(moment).toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  // Axis ticks in UTC like every time on the pages: 14:05, or the date at midnight.
  function clock(ts) {
    var iso = new Date(ts * 1000).toISOString();
    return iso.slice(11, 16) === "00:00" ? iso.slice(5, 10) : iso.slice(11, 16);
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function timeEl(iso) {
    return el("time", { datetime: iso, title: utc(iso) }, ago(iso));
  }

  function indicator(text, state) {
    var node = document.getElementById("live-indicator");
    if (!node) { return; }
    node.hidden = false;
    node.textContent = text;
    node.dataset.state = state;
  }

  // A chart's own "nothing in this range" note; once any chart has data, the page's "no logs
  // yet" notice (rendered before the first line arrived) is stale too.
  function showEmpty(chart, empty) {
    var frame = chart.closest(".chart-frame");
    var note = frame ? frame.querySelector(".chart-empty") : null;
    if (note) { note.hidden = !empty; }
    if (chart.dataset.chart !== "heatmap") { chart.hidden = empty; }  // ECharts needs its size
    if (!empty) {
      document.querySelectorAll(".empty-state").forEach(function (n) { n.hidden = true; });
    }
  }

  // --- uPlot time series ----------------------------------------------------------------------

  var COLORS = ["--info-bar", "--warn-bar", "--bad-bar", "--ok-bar", "--muted-bar"];

  function palette(i) { return css(COLORS[i % COLORS.length]) || "#3b82f6"; }

  // `span.x`, when set, is the [from, to] of the range asked for: the axis shows the whole range
  // (a live chart fills in from the right) and one lone window does not stretch over years.
  // `marks`: the page's annotation store (annotations.js), drawn on the time axis.
  function plotFor(node, labels, unit, dashedFrom, span, marks) {
    var axis = { stroke: css("--muted"), grid: { stroke: css("--border"), width: 1 }, ticks: { stroke: css("--border") } };
    var fmt = formatter(unit);
    var series = [{ label: "UTC", value: function (u, v) { return v === null ? "—" : utc(v * 1000); } }].concat(labels.map(function (label, i) {
      var s = { label: label, stroke: palette(i % (dashedFrom || 99)), width: 1.6, value: function (u, v) { return fmt(v); }, spanGaps: false };
      if (dashedFrom && i >= dashedFrom) { s.dash = [6, 4]; s.stroke = palette(i - dashedFrom); }
      return s;
    }));
    var opts = {
      width: Math.max(node.clientWidth, 300),
      height: 240,
      series: series,
      scales: { x: { time: true, range: function (u, min, max) { return span && span.x ? span.x : [min, max]; } } },
      axes: [
        Object.assign({}, axis, { values: function (u, vals) { return vals.map(clock); } }),
        Object.assign({}, axis, { size: 70, values: function (u, vals) { return vals.map(fmt); } }),
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      plugins: marks ? [window.fleetopsAnnotations.uplot(marks)] : [],
    };
    var empty = [[]].concat(labels.map(function () { return []; }));
    var plot = new window.uPlot(opts, empty, node);
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var width = Math.max(node.clientWidth, 300);
        if (width !== plot.width) { plot.setSize({ width: width, height: 240 }); }
      }).observe(node);
    }
    return plot;
  }

  // Align several point lists on their union of window starts (missing values are gaps).
  function align(lists) {
    var xs = {};
    lists.forEach(function (list) { list.forEach(function (p) { xs[p.t] = true; }); });
    var times = Object.keys(xs).map(Number).sort(function (a, b) { return a - b; });
    var index = {};
    times.forEach(function (t, i) { index[t] = i; });
    var columns = lists.map(function (list) {
      var col = times.map(function () { return null; });
      list.forEach(function (p) { col[index[p.t]] = p.v; });
      return col;
    });
    return [times].concat(columns);
  }

  function fields(spec) {
    return (spec || "").split(",").filter(Boolean).map(function (pair) {
      var parts = pair.split(":");
      return { key: parts[0], label: parts[1] || parts[0] };
    });
  }

  function pick(points, key) {
    return points.map(function (p) { return { t: seconds(p.start), v: p[key] }; });
  }

  function latencyChart(node, ctx) {
    var labels = ["p50", "p95", "p99"];
    var span = {};
    var plot = plotFor(node, labels, node.dataset.unit, 0, span, ctx.marks);
    return function () {
      var url = API + "/latency?metric=" + encodeURIComponent(node.dataset.metric) +
        "&seconds=" + encodeURIComponent(ctx.seconds);
      return getJSON(join(url, ctx.query)).then(function (series) {
        var points = series.points;
        span.x = [seconds(series.from), seconds(series.to)];
        plot.setData(align(labels.map(function (k) { return pick(points, k); })));
        node.dataset.points = String(points.length);
        showEmpty(node, points.length === 0);
        updateLatest(node.dataset.metric, points, series.unit);
      });
    };
  }

  function updateLatest(metric, points, unit) {
    var box = document.getElementById(metric + "-latest");
    if (!box || !points.length) { return; }
    var last = points[points.length - 1];
    box.querySelectorAll("[data-field]").forEach(function (dd) {
      var key = dd.dataset.field;
      dd.textContent = "";
      if (key === "start") { dd.appendChild(timeEl(last.start)); }
      else if (key === "count") { dd.textContent = String(last.count); }
      else { dd.textContent = duration(last[key], unit); }
    });
  }

  // A generic series chart: `data-fields` (key:label,...) of `data-url`, optionally an overlay
  // (`data-overlay`, drawn dashed) or one line per value of `data-pivot` (e.g. error signature).
  function seriesChart(node, ctx) {
    var own = fields(node.dataset.fields);
    var overlay = fields(node.dataset.overlayFields);
    var pivot = node.dataset.pivot;
    var plot = null;
    var shown = "";
    var span = {};

    function draw(labels, lists, dashedFrom) {
      var key = labels.join("|");
      if (!plot || key !== shown) {
        node.textContent = "";
        plot = plotFor(node, labels, node.dataset.unit, dashedFrom, span, ctx.marks);
        shown = key;
      }
      plot.setData(align(lists));
    }

    return function () {
      var url = join(join(node.dataset.url, "seconds=" + ctx.seconds), ctx.query);
      var requests = [getJSON(url)];
      if (node.dataset.overlay) { requests.push(getJSON(join(node.dataset.overlay, ctx.query))); }
      return Promise.all(requests).then(function (answers) {
        var points = answers[0].points;
        span.x = [seconds(answers[0].from), seconds(answers[0].to)];
        if (pivot) {
          var groups = {};
          points.forEach(function (p) {
            (groups[p[pivot]] = groups[p[pivot]] || []).push({ t: seconds(p.start), v: p[node.dataset.value] });
          });
          var names = Object.keys(groups).sort();
          if (names.length) { draw(names, names.map(function (n) { return groups[n]; })); }
        } else {
          var labels = own.map(function (f) { return f.label; });
          var lists = own.map(function (f) { return pick(points, f.key); });
          if (answers.length > 1) {
            labels = labels.concat(overlay.map(function (f) { return f.label; }));
            lists = lists.concat(overlay.map(function (f) { return pick(answers[1].points, f.key); }));
          }
          draw(labels, lists, answers.length > 1 ? own.length : 0);
        }
        var windows = {};
        points.forEach(function (p) { windows[p.start] = true; });
        node.dataset.points = String(Object.keys(windows).length);
        showEmpty(node, points.length === 0);
      });
    };
  }

  // --- the slowest jobs table -----------------------------------------------------------------

  function jobsTable(table, ctx) {
    var body = table.tBodies[0];
    return function () {
      return getJSON(join(API + "/jobs?order=slowest&limit=10", ctx.query)).then(function (jobs) {
        var rows = jobs.map(function (j) {
          var tr = el("tr");
          tr.appendChild(el("td", { class: "mono" }, j.app_id));
          var state = el("td");
          var tone = j.state === "finished" ? "ok" : j.state === "running" ? "info" : "bad";
          state.appendChild(el("span", { class: "badge " + tone }, j.state));
          tr.appendChild(state);
          tr.appendChild(el("td", { class: "num" }, j.duration_s !== null ? duration(j.duration_s, "s") : j.state === "running" ? "running" : "—"));
          tr.appendChild(el("td", { class: "num" }, String(j.tasks_finished)));
          tr.appendChild(el("td", { class: "num" }, String(j.tasks_failed)));
          var started = el("td");
          if (j.started_at) { started.appendChild(timeEl(j.started_at)); } else { started.textContent = "never"; }
          tr.appendChild(started);
          var host = el("td");
          if (j.host) { host.appendChild(el("a", { class: "mono", href: "/hosts/" + encodeURIComponent(j.host) }, j.host)); }
          tr.appendChild(host);
          return tr;
        });
        if (!rows.length) {
          var empty = el("tr");
          empty.appendChild(el("td", { colspan: "7", class: "empty" }, "No job ran in this range."));
          rows = [empty];
        }
        body.replaceChildren.apply(body, rows);
      });
    };
  }

  // --- ECharts heatmap --------------------------------------------------------------------------

  function escapeHTML(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function heatmap(node) {
    var chart = window.echarts.init(node, null, { renderer: "canvas" });
    var byColor = node.dataset.color === "slow" ? "slow" : "p95";
    var slow = parseFloat(node.dataset.slow) || 0.2;
    var entity = node.dataset.entity;
    var pageQuery = node.dataset.pageQuery;

    chart.on("click", function (event) {
      var cell = event.data && event.data.cell;
      if (!cell) { return; }
      window.location.href = "/diagnosis/links/" + encodeURIComponent(cell.src_rack) + "/" +
        encodeURIComponent(cell.dst_rack) + (pageQuery ? "?" + pageQuery : "");
    });
    if (window.ResizeObserver) { new ResizeObserver(function () { chart.resize(); }).observe(node); }

    function tooltip(params) {
      var c = params.data.cell;
      return "<b>" + escapeHTML(c.src_rack) + " → " + escapeHTML(c.dst_rack) + "</b><br>" +
        c.transfers + " transfers, " + c.slow + " slow (" + Math.round(c.slow_fraction * 100) + "%)<br>" +
        "p50 " + duration(c.p50_ms, "ms") + ", worst p95 " + duration(c.p95_ms, "ms") + "<br>" +
        (c.mbps_p50 === null ? "" : Math.round(c.mbps_p50) + " MB/s median<br>") +
        "<i>click for its windows</i>";
    }

    function render(matrix) {
      var racks = matrix.racks;
      var at = {};
      racks.forEach(function (r, i) { at[r] = i; });
      var low = Infinity;
      var top = 0;
      var data = matrix.cells.map(function (c) {
        var value = byColor === "slow" ? c.slow_fraction : c.p95_ms;
        if (value !== null && value > top) { top = value; }
        if (value !== null && value < low) { low = value; }
        var item = { value: [at[c.dst_rack], at[c.src_rack], value === null ? "-" : value], cell: c };
        if (c.slow_fraction >= slow) {
          item.itemStyle = { borderColor: css("--bad"), borderWidth: 2 };
        } else if (entity && (c.src_rack === entity || c.dst_rack === entity)) {
          item.itemStyle = { borderColor: css("--accent"), borderWidth: 2 };
        }
        return item;
      });
      var text = css("--muted");
      var rotate = racks.length > 12 ? 60 : 0;
      var label = {
        color: text,
        formatter: function (v) { return v === entity ? "{hl|" + v + "}" : v; },
        rich: { hl: { color: css("--accent-text"), backgroundColor: css("--accent"), padding: [2, 4], borderRadius: 3, fontWeight: "bold" } },
      };
      chart.setOption({
        animation: false,
        textStyle: { color: text },
        tooltip: { formatter: tooltip },
        grid: { left: 90, right: 120, top: 16, bottom: rotate ? 90 : 50 },
        xAxis: { type: "category", data: racks, name: "to rack", nameLocation: "middle", nameGap: rotate ? 70 : 32,
          splitArea: { show: true }, axisLabel: Object.assign({ rotate: rotate, interval: 0 }, label) },
        yAxis: { type: "category", data: racks, name: "from rack", nameLocation: "middle", nameGap: 64, inverse: true,
          splitArea: { show: true }, axisLabel: Object.assign({ interval: 0 }, label) },
        visualMap: {
          // Slow share: 0-100 %. Latency: from the fastest cell to the slowest, but at least 1.5x
          // wide, so a fleet where every path is alike does not look half on fire.
          min: byColor === "slow" ? 0 : (low === Infinity ? 0 : Math.floor(low)),
          max: byColor === "slow" ? 1 : Math.max(top, low === Infinity ? 1 : low * 1.5, 1),
          calculable: true, orient: "vertical", right: 8, top: "middle", textStyle: { color: text },
          inRange: { color: [css("--ok-bar"), css("--warn-bar"), css("--bad-bar")] },
          formatter: function (v) { return byColor === "slow" ? Math.round(v * 100) + "%" : duration(v, "ms"); },
        },
        series: [{ type: "heatmap", data: data, emphasis: { itemStyle: { borderColor: css("--text"), borderWidth: 2 } } }],
      }, true);
      node.dataset.cells = String(data.length);
      showEmpty(node, data.length === 0);
    }

    return function () {
      // 10 s windows for ranges up to an hour (cells appear within seconds), minutes beyond
      return getJSON(join(API + "/links?seconds=" + (node.dataset.seconds || "60"), node.dataset.query)).then(render);
    };
  }

  // --- polling ------------------------------------------------------------------------------------

  function follow(refreshers, every, live) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      Promise.all(refreshers.map(function (f) { return f(); }))
        .then(function () { if (live) { indicator("Live", "on"); } })
        .catch(function () { indicator("Update failed: retrying", "error"); })
        .finally(function () { busy = false; });
    }
    tick();
    if (!live) { return; }
    if (window.fleetopsRefresh) { window.fleetopsRefresh.schedule(tick, every); }  // the URL's ?refresh=
    else { window.setInterval(tick, Math.max(every, 1) * 1000); }
  }

  function charts() {
    var root = document.getElementById("diagnosis-live");
    var refreshers = [];
    if (root && window.uPlot) {
      var ctx = { query: root.dataset.query, seconds: root.dataset.seconds };
      if (window.fleetopsAnnotations) {
        ctx.marks = window.fleetopsAnnotations.forPage();
        refreshers.push(function () { return ctx.marks.load(); });
      }
      root.querySelectorAll("[data-chart=latency]").forEach(function (n) { refreshers.push(latencyChart(n, ctx)); });
      root.querySelectorAll("[data-chart=series]").forEach(function (n) { refreshers.push(seriesChart(n, ctx)); });
      var jobs = document.getElementById("slow-jobs");
      if (jobs && root.hasAttribute("data-live")) { refreshers.push(jobsTable(jobs, ctx)); }
      follow(refreshers, parseFloat(root.dataset.poll) || 5, root.hasAttribute("data-live"));
    }
    var map = document.querySelector("[data-chart=heatmap]");
    if (map && window.echarts) {
      follow([heatmap(map)], parseFloat(map.dataset.poll) || 15, map.hasAttribute("data-live"));
    }
  }

  // --- live tail of the log search ----------------------------------------------------------------

  function searchHref(changes) {
    var params = new URLSearchParams(window.location.search);
    params.delete("before");
    Object.keys(changes).forEach(function (k) { params.set(k, changes[k]); });
    return "/logs/search?" + params.toString();
  }

  function lineRow(line) {
    var tr = el("tr", { "data-id": String(line.id), class: "fresh" });
    var ts = el("td", { class: "ts mono" });
    ts.appendChild(el("time", { datetime: line.ts }, utc(line.ts)));
    tr.appendChild(ts);
    var host = el("td", { class: "host" });
    host.appendChild(el("a", { class: "mono", href: searchHref({ host: line.host }), title: "Only " + line.host }, line.host));
    tr.appendChild(host);
    var tpl = el("td", { class: "num" });
    if (line.template_id) {
      tpl.appendChild(el("a", { href: searchHref({ template: line.template_id }), title: "Only this template" }, String(line.template_id)));
    }
    tr.appendChild(tpl);
    tr.appendChild(el("td", { class: "message mono" }, line.message));
    return tr;
  }

  function trim(body) {
    var rows = body.querySelectorAll("tr[data-id]");
    if (rows.length <= MAX_TAIL_ROWS) { return; }
    for (var i = MAX_TAIL_ROWS; i < rows.length; i++) { rows[i].remove(); }
    var last = rows[MAX_TAIL_ROWS - 1].dataset.id;
    var more = document.getElementById("lines-more");
    if (more) { more.remove(); }
    var tr = el("tr", { id: "lines-more" });
    var td = el("td", { colspan: "4", class: "more" });
    td.appendChild(el("a", { class: "button subtle", href: searchHref({ before: last }) }, "Load more"));
    tr.appendChild(td);
    body.appendChild(tr);
  }

  function tail() {
    var table = document.getElementById("log-lines");
    var toggle = document.getElementById("tail-toggle");
    if (!table || !toggle || toggle.disabled) { return; }
    var body = document.getElementById("log-rows");
    var newest = parseInt(table.dataset.newest, 10) || 0;
    var timer = null;
    var busy = false;

    function poll() {
      if (busy || document.hidden) { return; }
      busy = true;
      var url = join("/api/v1/logs/search?limit=200&after_id=" + newest, table.dataset.tailQuery);
      getJSON(url).then(function (lines) {
        indicator("Live tail", "on");
        if (!lines.length) { return; }
        var placeholder = body.querySelector("tr.no-lines");
        if (placeholder) { placeholder.remove(); }
        lines.forEach(function (line) {  // oldest first: each goes on top, so the newest ends first
          body.insertBefore(lineRow(line), body.firstChild);
          newest = Math.max(newest, line.id);
        });
        table.dataset.newest = String(newest);
        trim(body);
      }).catch(function () {
        indicator("Tail failed: retrying", "error");
      }).finally(function () { busy = false; });
    }

    function set(on) {
      var params = new URLSearchParams(window.location.search);
      if (on) { params.set("tail", "1"); } else { params.delete("tail"); }
      var query = params.toString();
      window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
      if (on && timer === null) {
        poll();
        timer = window.setInterval(poll, 2000);
      } else if (!on && timer !== null) {
        window.clearInterval(timer);
        timer = null;
        indicator("Paused", "off");
      }
    }

    toggle.addEventListener("change", function () { set(toggle.checked); });
    if (toggle.checked) { set(true); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.fetch || !window.Promise) { return; }
    charts();
    tail();
  });
})();
