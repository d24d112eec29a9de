/* fleetops resource right-sizing: one group's requested, used and recommended CPU and memory over
   the trace, drawn with ECharts from the page's JSON data block (`#resource-series`, written by
   analytics/resources/pages.py; the Content-Security-Policy forbids inline script). CPU on the left
   axis (cores), memory on the right (the trace's normalised units); requested dashed, used solid,
   recommended dotted. */
(function () {
  "use strict";

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function line(name, values, axis, color, type) {
    return {
      name: name, type: "line", yAxisIndex: axis, showSymbol: false, connectNulls: false,
      lineStyle: { width: 2, color: color, type: type }, itemStyle: { color: color }, data: values
    };
  }

  function draw() {
    var node = document.getElementById("resource-chart");
    var data = document.getElementById("resource-series");
    if (!node || !data || typeof echarts === "undefined") { return; }
    var d = JSON.parse(data.textContent);
    if (!d.t) { return; }
    var cpu = css("--info-bar") || "#3b82f6";
    var mem = css("--ok") || "#16a34a";
    var chart = echarts.init(node);
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: { color: css("--text") } },
      grid: { left: 56, right: 56, top: 48, bottom: 32 },
      xAxis: { type: "category", name: "s", data: d.t.map(function (t) { return Math.round(t); }) },
      yAxis: [{ type: "value", name: "cores" }, { type: "value", name: "memory units" }],
      series: [
        line("CPU requested", d.cpu.requested, 0, cpu, "dashed"),
        line("CPU used", d.cpu.used, 0, cpu, "solid"),
        line("CPU recommended", d.cpu.recommended, 0, cpu, "dotted"),
        line("memory requested", d.mem.requested, 1, mem, "dashed"),
        line("memory used", d.mem.used, 1, mem, "solid"),
        line("memory recommended", d.mem.recommended, 1, mem, "dotted")
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  document.addEventListener("DOMContentLoaded", draw);
}());
