// Curtain's link-page chart: fetches the link's hourly time series from the API and draws it
// as an SVG bar chart. Served by Curtain itself (no CDN, no dependency); about 60 lines.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function draw(container, points) {
    var width = 720, height = 220, left = 36, bottom = 24, top = 8;
    var max = Math.max(1, Math.max.apply(null, points.map(function (p) { return p.clicks; })));
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": "clicks per hour", id: "chart-svg" });
    var slot = (width - left) / points.length;
    points.forEach(function (p, i) {
      var h = (height - bottom - top) * p.clicks / max;
      var bar = el("rect", { "class": "bar", x: left + i * slot + 1, y: height - bottom - h,
        width: Math.max(1, slot - 2), height: h, "data-clicks": p.clicks, "data-start": p.start });
      bar.appendChild(el("title", {}, p.start + " UTC: " + p.clicks + " clicks, " +
        p.unique_visitors + " unique visitors"));
      svg.appendChild(bar);
      if (i % 6 === 0) {
        svg.appendChild(el("text", { "class": "axis", x: left + i * slot, y: height - 6 },
          p.start.slice(11, 16)));
      }
    });
    svg.appendChild(el("text", { "class": "axis", x: 0, y: top + 10 }, String(max)));
    svg.appendChild(el("text", { "class": "axis", x: 0, y: height - bottom }, "0"));
    container.textContent = "";
    container.appendChild(svg);
  }
  function load() {
    var container = document.getElementById("chart");
    if (!container) { return; }
    var id = container.getAttribute("data-url-id");
    fetch("/urls/" + encodeURIComponent(id) + "/analytics/timeseries?granularity=hour")
      .then(function (r) {
        if (!r.ok) { throw new Error("time series: HTTP " + r.status); }
        return r.json();
      })
      .then(function (series) { draw(container, series.points); })
      .catch(function (e) { container.textContent = "The chart could not be loaded (" + e.message + ")."; });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", load);
  } else {
    load();
  }
})();
