/* fleetops inspection report: draw a run's curve over its hardware model's band with ECharts.

   The figures come from the page's JSON data block (`#inspection-curve`, written by
   inspection/pages.py), not from inline script: the Content-Security-Policy forbids those. With a
   baseline every point is drawn in % of the model's median, so IOPS and MiB/s share one axis: the
   band (low..high) is a shaded area stacked on an invisible line at `low`, the median a dashed line
   at 100 %, the host a line with markers, red where a point is below its band. Without a baseline
   only the host's raw figures are drawn, on a log axis. The tooltip gives each raw value and unit. */
(function () {
  "use strict";

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function escapeHTML(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function num(value) {
    if (value === null || value === undefined) { return "—"; }
    return Math.abs(value) >= 100 ? Math.round(value).toLocaleString("en-US") : String(Number(value.toPrecision(3)));
  }

  function percent(value) {
    if (value === null || value === undefined) { return "—"; }
    return (Math.abs(value) >= 10 ? Math.round(value) : Number(value.toPrecision(2))) + " %";
  }

  function tooltip(points, normalised) {
    return function (params) {
      var p = points[params[0].dataIndex];
      var unit = escapeHTML(p.unit);
      var lines = ["<b>" + escapeHTML(p.label) + "</b>"];
      lines.push("host: " + num(p.value) + " " + unit + (normalised && p.pct !== null ? " (" + percent(p.pct) + " of median)" : ""));
      if (p.median !== null) {
        lines.push("median: " + num(p.median) + " " + unit);
        lines.push("band: " + num(p.low) + " – " + num(p.high) + " " + unit +
          " (" + percent(p.low_pct) + " – " + percent(p.high_pct) + ")");
      }
      if (p.below) { lines.push('<span style="color:' + css("--bad") + '">below the band</span>'); }
      return lines.join("<br>");
    };
  }

  function series(data, normalised) {
    var bad = css("--bad-bar");
    var host = css("--info-bar");
    var points = data.points;
    var line = {
      name: data.host, type: "line", symbol: "circle", symbolSize: 9, z: 5, connectNulls: false,
      lineStyle: { width: 2.5, color: host }, itemStyle: { color: host },
      data: points.map(function (p) {
        var value = normalised ? p.pct : p.value;
        if (value === null) { return null; }
        if (!p.below) { return value; }
        return { value: value, itemStyle: { color: bad, borderColor: bad },
          label: { show: true, position: "bottom", color: css("--bad"), fontWeight: "bold", formatter: percent(p.pct) } };
      }),
    };
    if (!normalised) { return [line]; }
    var band = css("--ok-bar");
    var hidden = { opacity: 0 };
    return [
      { name: "band low", type: "line", stack: "band", symbol: "none", silent: true, lineStyle: hidden,
        data: points.map(function (p) { return p.low_pct; }) },
      { name: "band", type: "line", stack: "band", symbol: "none", silent: true, lineStyle: hidden,
        areaStyle: { color: band, opacity: 0.2 }, itemStyle: { color: band },
        data: points.map(function (p) { return p.high_pct === null ? null : p.high_pct - p.low_pct; }) },
      { name: "median", type: "line", symbol: "none", silent: true,
        lineStyle: { type: "dashed", width: 1.5, color: css("--ok") }, itemStyle: { color: css("--ok") },
        data: points.map(function (p) { return p.median === null ? null : 100; }) },
      line,
    ];
  }

  function draw(node, data) {
    var chart = window.echarts.init(node, null, { renderer: "canvas" });
    var normalised = Boolean(data.normalised);
    var text = css("--muted");
    var grid = css("--border");
    chart.setOption({
      animation: false,
      textStyle: { color: text },
      legend: { data: normalised ? ["band", "median", data.host] : [data.host], textStyle: { color: text }, top: 0 },
      tooltip: { trigger: "axis", formatter: tooltip(data.points, normalised) },
      grid: { left: 64, right: 24, top: 40, bottom: 56 },
      xAxis: { type: "category", boundaryGap: false, data: data.points.map(function (p) { return p.label; }),
        axisLabel: { color: text, interval: 0 }, axisLine: { lineStyle: { color: grid } } },
      yAxis: normalised
        ? { type: "value", min: 0, name: "% of model median", nameTextStyle: { color: text },
            axisLabel: { color: text, formatter: "{value} %" }, splitLine: { lineStyle: { color: grid } } }
        : { type: "log", name: "value (own unit per point)", nameTextStyle: { color: text },
            axisLabel: { color: text }, splitLine: { lineStyle: { color: grid } } },
      series: series(data, normalised),
    }, true);
    if (window.ResizeObserver) { new ResizeObserver(function () { chart.resize(); }).observe(node); }
    node.dataset.drawn = "true";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("inspection-chart");
    var block = document.getElementById("inspection-curve");
    if (!node || !block || !window.echarts) { return; }
    draw(node, JSON.parse(block.textContent));
  });
})();
