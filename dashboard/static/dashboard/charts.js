/* Two tiny SVG charts, hand-written: bars (counts per minute) and a line (a rate per minute). */
(function () {
  "use strict";
  const OF = (window.OF = window.OF || {});
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function frame(svg) {
    const w = svg.clientWidth || 600, h = svg.clientHeight || 160;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    return { w: w, h: h, l: 30, r: 8, t: 10, b: 20 };
  }
  function labels(svg, f, points, max, fmt) {
    el("line", { x1: f.l, y1: f.h - f.b, x2: f.w - f.r, y2: f.h - f.b, class: "axis" }, svg);
    el("line", { x1: f.l, y1: f.t, x2: f.l, y2: f.h - f.b, class: "axis" }, svg);
    el("text", { x: f.l - 4, y: f.t + 8, "text-anchor": "end" }, svg).textContent = fmt(max);
    el("text", { x: f.l - 4, y: f.h - f.b, "text-anchor": "end" }, svg).textContent = fmt(0);
    if (points.length) {
      const first = new Date(points[0].t), last = new Date(points[points.length - 1].t);
      const hm = (d) => window.OF.hm(d);
      el("text", { x: f.l, y: f.h - 5 }, svg).textContent = hm(first);
      el("text", { x: f.w - f.r, y: f.h - 5, "text-anchor": "end" }, svg).textContent = hm(last);
    }
  }
  OF.barChart = function (svg, points, key) {
    const f = frame(svg);
    const max = Math.max(1, ...points.map((p) => p[key]));
    const bw = (f.w - f.l - f.r) / Math.max(points.length, 1);
    points.forEach((p, i) => {
      const v = p[key], bh = ((f.h - f.t - f.b) * v) / max;
      const r = el("rect", { x: f.l + i * bw + 1, y: f.h - f.b - bh, width: Math.max(bw - 2, 1), height: bh,
        class: "bar" + (i === points.length - 1 ? " now" : "") }, svg);
      el("title", {}, r).textContent = window.OF.hm(p.t) + ": " + v;
    });
    labels(svg, f, points, max, (v) => String(v));
  };
  OF.rateChart = function (svg, points, okKey, badKey) {
    const f = frame(svg);
    const bw = (f.w - f.l - f.r) / Math.max(points.length - 1, 1);
    const y = (r) => f.h - f.b - (f.h - f.t - f.b) * r;
    let d = "";
    points.forEach((p, i) => {
      const n = p[okKey] + p[badKey];
      if (!n) return;
      const r = p[okKey] / n, x = f.l + i * bw;
      d += (d ? " L" : "M") + x.toFixed(1) + " " + y(r).toFixed(1);
      const c = el("circle", { cx: x, cy: y(r), r: 2.6, class: "dot" }, svg);
      el("title", {}, c).textContent = window.OF.hm(p.t) + ": " + p[okKey] + " paid, " + p[badKey] + " failed";
    });
    if (d) el("path", { d: d, class: "line" }, svg);
    else el("text", { x: f.w / 2, y: f.h / 2, "text-anchor": "middle" }, svg).textContent = "no payments in the last hour";
    labels(svg, f, points, 1, (v) => Math.round(v * 100) + "%");
  };
})();
