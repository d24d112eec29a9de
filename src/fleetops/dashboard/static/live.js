/* The live screen: one EventSource; each `panels` event carries the panels that changed.
   Text goes in with textContent only: titles and names come from users. */
(function () {
  "use strict";

  var FOCUS_SECONDS = 10; // the wall screen moves its highlight from panel to panel

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function link(href, text) {
    var a = el("a", "", text);
    a.href = href;
    return a;
  }

  function fill(root, name, items, render, total) {
    var list = root.querySelector('[data-list="' + name + '"]');
    var count = root.querySelector('[data-count="' + name + '"]');
    var before = {};
    Array.prototype.forEach.call(list.children, function (li) { before[li.dataset.id] = true; });
    list.replaceChildren();
    if (!items.length) { list.appendChild(el("li", "muted", "none")); }
    items.forEach(function (item) {
      var li = render(item);
      li.dataset.id = String(item.id);
      if (!before[li.dataset.id]) { li.classList.add("fresh"); }
      list.appendChild(li);
    });
    if (count) { count.textContent = String(total === undefined ? items.length : total); }
  }

  function approval(change) {
    var li = el("li");
    li.appendChild(link("/changes/" + change.id, "#" + change.id + " " + change.title));
    li.appendChild(el("span", "meta", change.risk + " risk · " + change.hosts + " hosts · by " +
      change.requester + " · " + change.votes + "/" + change.needed + " approvals"));
    return li;
  }

  function running(change) {
    var li = el("li");
    li.appendChild(link("/changes/" + change.id, "#" + change.id + " " + change.title));
    var bar = el("progress");
    bar.max = Math.max(change.total, 1);
    bar.value = change.done;
    bar.setAttribute("aria-label", change.done + " of " + change.total + " hosts done");
    li.appendChild(bar);
    li.appendChild(el("span", "meta", change.state + " · " + change.done + "/" + change.total +
      " hosts" + (change.failed ? " · " + change.failed + " failed" : "")));
    return li;
  }

  var SVG = "http://www.w3.org/2000/svg";

  // A sparkline: the series as a polyline scaled to its own range; gaps (null) are skipped.
  function spark(values, label, band) {
    var width = 160, height = 32;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("class", "sparkline");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    var known = values.filter(function (v) { return v !== null && v !== undefined; });
    if (known.length < 2) { return svg; }
    var low = Math.min.apply(null, known.concat(band ? [band[0]] : []));
    var high = Math.max.apply(null, known.concat(band ? [band[1]] : []));
    var span = high - low || 1;
    var step = width / (values.length - 1);
    function y(v) { return height - 2 - (v - low) / span * (height - 4); }
    if (band) {
      var rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("class", "band");
      rect.setAttribute("x", "0");
      rect.setAttribute("width", String(width));
      rect.setAttribute("y", y(band[1]).toFixed(1));
      rect.setAttribute("height", Math.max(1, y(band[0]) - y(band[1])).toFixed(1));
      svg.appendChild(rect);
    }
    var points = [];
    values.forEach(function (v, i) {
      if (v === null || v === undefined) { return; }
      points.push((i * step).toFixed(1) + "," + y(v).toFixed(1));
    });
    var line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.appendChild(line);
    return svg;
  }

  function round(value) {
    if (value === null || value === undefined) { return "–"; }
    return value >= 100 ? value.toFixed(0) : value.toFixed(value >= 10 ? 1 : 2);
  }

  function hotLink(cell) {
    var li = el("li", cell.hot ? "hot" : "");
    var name = cell.src === cell.dst ? cell.src + " (within the rack)" : cell.src + " → " + cell.dst;
    li.appendChild(link("/diagnosis/links/" + encodeURIComponent(cell.src) + "/" +
      encodeURIComponent(cell.dst), name));
    li.appendChild(el("span", "meta", (cell.slow_fraction * 100).toFixed(0) + "% slow · p95 " +
      round(cell.p95_ms) + " ms · " + cell.transfers + " transfers" +
      (cell.hot ? " · slow link" : cell.recovering ? " · recovering" : "")));
    li.appendChild(spark(cell.series, name + ": p95 per 10 s, last 5 minutes"));
    // A slow link between two racks can be switched: the page proposes draining the suspect
    // ToR's uplink as a change. A wall screen (kiosk) is for watching, not acting.
    if (cell.hot && cell.src !== cell.dst && !document.documentElement.classList.contains("kiosk")) {
      var act = link("/network/links/" + encodeURIComponent(cell.src) + "/" +
        encodeURIComponent(cell.dst) + "/switch", "Switch link…");
      act.className = "button subtle switch-link";
      act.setAttribute("aria-label", "Switch link " + name);
      li.appendChild(act);
    }
    return li;
  }

  // The rack × rack matrix as it is now: a row per source rack, a column per target rack; a cell
  // is red when the link is slow now, amber when some of its transfers were, grey when it carried
  // none lately. A click opens the link's page; the hot links listed under it are the same
  // drill-down for the keyboard and screen readers.
  function linkMatrix(box, m, slowCell) {
    var n = m.racks.length;
    if (!n) { box.replaceChildren(); return; }
    var size = Math.max(4, Math.min(14, Math.floor(280 / n)));
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + n * size + " " + n * size);
    svg.setAttribute("width", String(n * size));
    svg.setAttribute("class", "link-matrix");
    svg.setAttribute("role", "img");
    var hot = [];
    m.cells.forEach(function (c) {
      var src = m.racks[c[0]], dst = m.racks[c[1]];
      var rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(c[1] * size));
      rect.setAttribute("y", String(c[0] * size));
      rect.setAttribute("width", String(size - 1));
      rect.setAttribute("height", String(size - 1));
      rect.setAttribute("class", c[3] ? "hot" : c[2] === null ? "idle" : c[2] >= slowCell / 2 ? "warm" : "ok");
      rect.dataset.href = "/diagnosis/links/" + encodeURIComponent(src) + "/" + encodeURIComponent(dst);
      var title = document.createElementNS(SVG, "title");
      title.textContent = src + " → " + dst + ": " +
        (c[2] === null ? "no transfer lately" : (c[2] * 100).toFixed(0) + "% slow now");
      rect.appendChild(title);
      svg.appendChild(rect);
      if (c[3]) { hot.push(src + " → " + dst); }
    });
    svg.setAttribute("aria-label", "rack × rack links, " + n + " racks: " + (hot.length ?
      hot.length + " slow now (" + hot.slice(0, 5).join(", ") + (hot.length > 5 ? ", …" : "") + ")" :
      "none slow now"));
    box.replaceChildren(svg);
  }

  function metric(m) {
    var li = el("li", m.outside ? "outside" : "");
    var head = el("span", "metric-head");
    head.appendChild(el("span", "metric-name", m.name));
    head.appendChild(el("span", "metric-value", round(m.last) + m.unit));
    li.appendChild(head);
    li.appendChild(timed(spark(m.series, m.name + ", last 15 minutes", m.band), m.times));
    li.appendChild(el("span", "meta", m.band ?
      (m.outside ? "outside " : "within ") + "its normal " + round(m.band[0]) + "–" + round(m.band[1]) + m.unit +
      " for this time of day" : "no history for a normal band yet"));
    return li;
  }

  function figure(root, key, value) {
    var node = root.querySelector('[data-figure="' + key + '"]');
    if (node) { node.textContent = String(value); }
  }

  function apply(root, panels) {
    if (panels.approvals) {
      fill(root, "approvals", panels.approvals.items, approval, panels.approvals.waiting);
    }
    if (panels.changes) { fill(root, "changes", panels.changes, running); }
    if (panels.throughput) { fill(root, "throughput", panels.throughput.items, metric); }
    if (panels.latency) {
      var l = panels.latency;
      ["p50", "p95", "p99"].forEach(function (q) { figure(root, "latency." + q, l.last ? round(l.last[q]) : "–"); });
      figure(root, "latency.unit", l.unit);
      var box = root.querySelector('[data-spark="latency"]');
      box.replaceChildren(timed(spark(l.series, "job latency p95, last 15 minutes"), l.times));
    }
    if (panels.links) {
      panels.links.items.forEach(function (item) { item.id = item.src + ">" + item.dst; });
      fill(root, "links", panels.links.items, hotLink);
      var grid = root.querySelector('[data-matrix="links"]');
      if (grid && panels.links.matrix) { linkMatrix(grid, panels.links.matrix, panels.links.slow_cell); }
    }
    if (panels.findings) {
      Object.keys(panels.findings).forEach(function (severity) {
        figure(root, "findings." + severity, panels.findings[severity]);
      });
    }
    if (panels.devices) {
      var d = panels.devices;
      var total = 0;
      Object.keys(d.out).forEach(function (state) {
        figure(root, "devices.out." + state, d.out[state]);
        total += d.out[state];
      });
      figure(root, "devices.total", total);
      figure(root, "devices.budget", d.budget);
      figure(root, "devices.fleet", d.fleet);
      var budget = root.querySelector(".live-budget");
      if (budget) { budget.classList.toggle("over", total > d.budget); }
    }
    annotate(root, panels);
  }

  // --- annotations: changes, service moves, findings, link switches on the sparklines -------------

  var MARK_LABELS = { change: "change", link: "link switch", isolation: "device", finding: "finding" };
  var marks = [];

  // Remember when each point of a sparkline is (epoch seconds), for the marks to find their x.
  function timed(svg, times) {
    if (times) { svg.dataset.times = JSON.stringify(times); }
    return svg;
  }

  function markX(times, t, width) {
    var n = times.length;
    if (n < 2 || t < times[0]) { return null; }
    var step = width / (n - 1);
    for (var i = 0; i < n - 1; i++) {
      if (t < times[i + 1]) { return (i + (t - times[i]) / (times[i + 1] - times[i])) * step; }
    }
    return t - times[n - 1] <= times[n - 1] - times[n - 2] ? width : null;  // within the last window
  }

  function markSpark(svg) {
    svg.querySelectorAll(".mark").forEach(function (m) { m.remove(); });
    var times = JSON.parse(svg.dataset.times);
    var width = svg.viewBox.baseVal.width;
    var height = svg.viewBox.baseVal.height;
    marks.forEach(function (m) {
      var x = markX(times, Date.parse(m.at) / 1000, width);
      if (x === null) { return; }
      var group = document.createElementNS(SVG, "g");  // the line, and a wider target to click
      group.setAttribute("class", "mark mark-" + m.kind);
      var hit = document.createElementNS(SVG, "rect");
      hit.setAttribute("x", Math.max(x - 3, 0).toFixed(1));
      hit.setAttribute("width", "6");
      hit.setAttribute("height", String(height));
      var line = document.createElementNS(SVG, "line");
      ["x1", "x2"].forEach(function (a) { line.setAttribute(a, x.toFixed(1)); });
      line.setAttribute("y1", "0");
      line.setAttribute("y2", String(height));
      var title = document.createElementNS(SVG, "title");
      title.textContent = MARK_LABELS[m.kind] + " " + m.event + ": " + m.title + " · " + m.at.slice(11, 19) + " UTC";
      group.append(title, hit, line);
      group.addEventListener("click", function () { window.location.href = m.href; });
      svg.appendChild(group);
    });
    svg.dataset.marks = String(svg.querySelectorAll(".mark").length);
  }

  function markItem(m) {
    var li = el("li", "mark-item " + m.kind);
    li.appendChild(el("span", "meta", m.at.slice(11, 19) + " · " + MARK_LABELS[m.kind] + " " + m.event));
    li.appendChild(link(m.href, m.title));
    return li;
  }

  function annotate(root, panels) {
    if (panels.annotations) {
      marks = panels.annotations.items;
      marks.forEach(function (m) { m.id = m.kind + m.event + m.href + m.at; });
      fill(root, "annotations", marks.slice().reverse(), markItem);
    }
    if (panels.annotations || panels.latency || panels.throughput) {
      root.querySelectorAll("svg.sparkline[data-times]").forEach(markSpark);
    }
  }

  function follow(root) {
    var state = document.getElementById("live-state");
    var updated = document.getElementById("live-updated");
    var status = state.parentNode;
    function show(text, cls) {
      state.textContent = text;
      status.className = "live-status " + cls;
    }
    var source = new EventSource(root.dataset.events);
    source.addEventListener("open", function () { show("Live", "on"); });
    source.addEventListener("error", function () {
      var closed = source.readyState === EventSource.CLOSED;
      show(closed ? "Not updating: reload" : "Reconnecting…", "off");
    });
    source.addEventListener("panels", function (event) {
      var data = JSON.parse(event.data);
      apply(root, data.panels);
      updated.textContent = "updated " + new Date(data.at * 1000).toLocaleTimeString();
      // For measurements (bench/live.py): which version arrived, and when.
      window.fleetopsLive = { version: data.version, at: data.at, received: Date.now() / 1000 };
    });
  }

  function cycle(root) {
    var panels = root.querySelectorAll(".live-panel");
    var index = 0;
    window.setInterval(function () {
      panels.forEach(function (p) { p.classList.remove("focus"); });
      panels[index % panels.length].classList.add("focus");
      index += 1;
    }, FOCUS_SECONDS * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("live");
    if (!root || !window.EventSource) { return; }
    if (root.dataset.kiosk) {
      document.documentElement.dataset.theme = "dark"; // a wall screen is dark, whatever was saved
      cycle(root);
    }
    root.addEventListener("click", function (event) {
      var href = event.target.dataset && event.target.dataset.href;
      if (href && event.target.closest("[data-matrix]")) { window.location.assign(href); }
    });
    follow(root);
  });
})();
