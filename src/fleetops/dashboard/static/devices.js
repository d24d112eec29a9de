/* fleetops device pages: keep the lifecycle board live, draw the out-of-service chart.

   The board (`#devices-live`) fetches its own fragment (`data-fragment`, server-rendered) every
   `data-poll` seconds while the tab is visible, and replaces each part (`[data-live][id]`: the
   figures, one column per state) whose `data-key` differs: a device moved through the API or by
   the policy shows up without a reload. The metrics page's chart (`[data-chart=capacity]`) is
   drawn with ECharts from /api/v1/repairs/metrics and redrawn on the same kind of poll. Without
   JavaScript every page is complete and read-only until reloaded. A static file because the
   Content-Security-Policy forbids inline scripts. */
(function () {
  "use strict";

  function indicator(text, state) {
    var node = document.getElementById("live-indicator");
    if (!node) { return; }
    node.hidden = false;
    node.textContent = text;
    node.dataset.state = state;
  }

  function fetchText(url, accept) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: accept } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return accept === "application/json" ? response.json() : response.text();
      });
  }

  // Run `refresh` now and every `every` seconds; skip while hidden or while one is in flight.
  function poll(refresh, every) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      refresh()
        .then(function () { indicator("Live", "on"); })
        .catch(function () { indicator("Update failed: retrying", "error"); })
        .finally(function () { busy = false; });
    }
    tick();
    if (window.fleetopsRefresh) { window.fleetopsRefresh.schedule(tick, every); }  // the URL's ?refresh=
    else { window.setInterval(tick, Math.max(every, 1) * 1000); }
    document.addEventListener("visibilitychange", function () { if (!document.hidden) { tick(); } });
  }

  // --- the board --------------------------------------------------------------------------------

  function swap(html) {
    var next = document.createElement("template");
    next.innerHTML = html;
    var changed = 0;
    next.content.querySelectorAll("[data-live][id]").forEach(function (fresh) {
      var old = document.getElementById(fresh.id);
      if (!old || old.dataset.key === fresh.dataset.key) { return; }
      if (fresh.classList.contains("board-col")) { fresh.classList.add("fresh"); }
      old.replaceWith(fresh);
      changed += 1;
    });
    var root = document.getElementById("devices-live");
    root.dataset.updated = new Date().toISOString();
    if (changed) { root.dataset.swaps = String((parseInt(root.dataset.swaps, 10) || 0) + changed); }
  }

  function board(root) {
    poll(function () {
      return fetchText(root.dataset.fragment, "text/html").then(swap);
    }, parseFloat(root.dataset.poll) || 5);
  }

  // --- the out-of-service chart -----------------------------------------------------------------

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function clock(ms) {
    var iso = new Date(ms).toISOString();
    return iso.slice(11, 16) === "00:00" ? iso.slice(5, 10) : iso.slice(5, 10) + " " + iso.slice(11, 16);
  }

  function capacityChart(node) {
    var chart = window.echarts.init(node, null, { renderer: "canvas" });
    var cores = node.hasAttribute("data-cores");
    var notes = window.fleetopsAnnotations;  // changes, isolations, findings on the time axis
    var marks = notes ? notes.forPage() : null;
    if (marks) {
      marks.subscribe(function () { chart.setOption({ series: [{ markLine: notes.markLine(marks, chart) }] }); });
    }
    if (window.ResizeObserver) { new ResizeObserver(function () { chart.resize(); }).observe(node); }

    function render(metrics) {
      var series = metrics.series;
      var text = css("--muted");
      var grid = css("--border");
      var devices = series.points.map(function (p) { return [Date.parse(p.end), p.devices]; });
      var lines = [{
        name: "devices", type: "line", step: "end", showSymbol: false, data: devices,
        lineStyle: { width: 2, color: css("--bad-bar") }, itemStyle: { color: css("--bad-bar") },
        areaStyle: { color: css("--bad-bar"), opacity: 0.12 },
        markLine: marks ? notes.markLine(marks, chart) : undefined,
      }];
      var axes = [{ type: "value", name: "devices", minInterval: 1, min: 0, axisLabel: { color: text },
        nameTextStyle: { color: text }, splitLine: { lineStyle: { color: grid } } }];
      if (cores) {
        lines.push({
          name: "cores", type: "line", step: "end", showSymbol: false, yAxisIndex: 1,
          data: series.points.map(function (p) { return [Date.parse(p.end), p.cores]; }),
          lineStyle: { width: 1.5, type: "dashed", color: css("--info-bar") }, itemStyle: { color: css("--info-bar") },
        });
        axes.push({ type: "value", name: "cores", min: 0, axisLabel: { color: text }, nameTextStyle: { color: text },
          splitLine: { show: false } });
      }
      chart.setOption({
        animation: false,
        textStyle: { color: text },
        legend: { data: lines.map(function (l) { return l.name; }), textStyle: { color: text }, top: 0 },
        tooltip: { trigger: "axis", valueFormatter: function (v) { return String(v); } },
        grid: { left: 56, right: cores ? 64 : 24, top: 36, bottom: 40 },
        xAxis: { type: "time", axisLabel: { color: text, formatter: clock }, splitLine: { show: false },
          min: Date.parse(series.points.length ? series.points[0].start : metrics.at), max: Date.parse(metrics.at) },
        yAxis: axes,
        series: lines,
      }, true);
      node.dataset.points = String(series.points.length);
      node.dataset.last = String(devices.length ? devices[devices.length - 1][1] : 0);
    }

    return function () {
      return fetchText(node.dataset.url, "application/json").then(function (metrics) {
        render(metrics);
        var points = metrics.series.points;
        if (!marks) { return null; }
        return marks.load("from=" + encodeURIComponent(points.length ? points[0].start : metrics.at) +
          "&to=" + encodeURIComponent(metrics.at));
      });
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.fetch || !window.Promise) { return; }
    var root = document.getElementById("devices-live");
    if (root && root.dataset.fragment) { board(root); }
    var chart = document.querySelector("[data-chart=capacity]");
    if (chart && window.echarts) { poll(capacityChart(chart), parseFloat(chart.dataset.poll) || 30); }
  });
})();
