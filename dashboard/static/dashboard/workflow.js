/* The workflow graph, laid out from data (never hand-drawn): one lane per state machine, states in
   columns by distance from the initial state, topics no state emits in a lane of their own, and the
   handlers on the right, wired to the topics they subscribe to. Live counts and an order's path. */
(function () {
  "use strict";
  const OF = window.OF, data = OF.page.graph, counts = Object.assign({}, OF.page.counts || {});
  const path = OF.page.path;
  const svg = document.getElementById("workflow");
  const NS = "http://www.w3.org/2000/svg";
  const NODE_W = 178, NODE_H = 42, COL_W = 214, ROW_H = 54, LANE_GAP = 26, LEFT = 118, TOP = 14;
  const H_W = 310, H_H = 26;

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function globToRe(p) {
    return new RegExp("^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
  }

  // ---- layout of the machines
  const nodes = []; // {id, label, topics:[], x, y, machine, state}
  const byTopic = {}; // topic -> [node]
  const edges = []; // {from, to, el}
  let y = TOP, maxX = 0;
  const lanes = [];
  data.machines.forEach((m) => {
    const depth = {};
    depth[m.initial] = 0;
    const queue = [m.initial];
    while (queue.length) {
      const s = queue.shift();
      m.edges.filter((e) => e[0] === s).forEach((e) => {
        if (depth[e[1]] === undefined) { depth[e[1]] = depth[s] + 1; queue.push(e[1]); }
      });
    }
    m.states.forEach((s) => { if (depth[s] === undefined) depth[s] = 0; });
    const cols = {};
    m.states.forEach((s) => { (cols[depth[s]] = cols[depth[s]] || []).push(s); });
    const rows = Math.max(...Object.values(cols).map((c) => c.length));
    const laneH = rows * ROW_H;
    lanes.push({ name: m.name, y: y, h: laneH });
    const finals = new Set(m.states.filter((s) => !m.edges.some((e) => e[0] === s)));
    Object.keys(cols).forEach((d) => {
      cols[d].forEach((s, i) => {
        const topics = [m.prefix + "." + s];
        if (s === m.initial) topics.push(m.prefix + ".created");
        const n = { id: m.name + ":" + s, label: s, topics: topics, machine: m.name, state: s,
          x: LEFT + d * COL_W, y: y + i * ROW_H + (laneH - cols[d].length * ROW_H) / 2,
          initial: s === m.initial, final: finals.has(s) };
        nodes.push(n);
        topics.forEach((t) => (byTopic[t] = byTopic[t] || []).push(n));
        maxX = Math.max(maxX, n.x + NODE_W);
      });
    });
    m.edges.forEach((e) => edges.push({ from: m.name + ":" + e[0], to: m.name + ":" + e[1] }));
    y += laneH + LANE_GAP;
  });

  // ---- topics that no state emits: handler subscriptions and what the log has seen
  const extra = new Set();
  data.handlers.forEach((h) => h.topics.forEach((t) => { if (!/[*?]/.test(t) && !byTopic[t]) extra.add(t); }));
  Object.keys(counts).forEach((t) => { if (!byTopic[t]) extra.add(t); });
  if (path) path.topics.forEach((t) => { if (!byTopic[t]) extra.add(t); });
  const extraList = Array.from(extra).sort();
  if (extraList.length) {
    const perRow = Math.max(3, Math.floor((maxX - LEFT) / COL_W) + 1);
    const rows = Math.ceil(extraList.length / perRow);
    lanes.push({ name: "Other topics", y: y, h: rows * ROW_H });
    extraList.forEach((t, i) => {
      const n = { id: "topic:" + t, label: t, topics: [t], machine: "topics", x: LEFT + (i % perRow) * COL_W,
        y: y + Math.floor(i / perRow) * ROW_H, topicOnly: true };
      nodes.push(n);
      (byTopic[t] = byTopic[t] || []).push(n);
      maxX = Math.max(maxX, n.x + NODE_W);
    });
    y += rows * ROW_H + LANE_GAP;
  }

  // ---- handlers on the right, grouped by queue
  const hx = maxX + 150;
  const hGap = 8;
  const handlers = data.handlers.map((h, i) => ({ h: h, x: hx, y: TOP + i * (H_H + hGap) }));
  const height = Math.max(y, TOP + handlers.length * (H_H + hGap) + 20);
  const width = hx + H_W + 20;
  svg.setAttribute("viewBox", "0 0 " + width + " " + height);
  svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
  svg.style.width = "100%";
  svg.style.height = "auto";
  svg.style.minWidth = Math.min(width, 980) + "px";

  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
  el("path", { d: "M0,0 L10,5 L0,10 z" }, marker);

  lanes.forEach((l) => {
    el("rect", { x: 4, y: l.y - 6, width: maxX + 10, height: l.h + 2, class: "lane", rx: 8 }, svg);
    el("text", { x: 12, y: l.y + 14, class: "lane-label" }, svg).textContent = l.name;
  });

  const byId = {};
  nodes.forEach((n) => (byId[n.id] = n));
  const gEdges = el("g", {}, svg), gWires = el("g", {}, svg), gNodes = el("g", {}, svg);
  edges.forEach((e) => {
    const a = byId[e.from], b = byId[e.to];
    let d;
    if (b.x === a.x) {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x + NODE_W, y2 = b.y + NODE_H / 2, bulge = x1 + 26;
      d = "M" + x1 + "," + y1 + " C" + bulge + "," + y1 + " " + bulge + "," + y2 + " " + x2 + "," + y2;
    } else if (b.x > a.x) {
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
      d = "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2;
    } else {
      const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2, y2 = b.y + NODE_H;
      const dip = Math.max(y1, y2) + 22;
      d = "M" + x1 + "," + y1 + " C" + x1 + "," + dip + " " + x2 + "," + dip + " " + x2 + "," + y2;
    }
    e.el = el("path", { d: d, class: "edge", "marker-end": "url(#arrow)" }, gEdges);
  });

  const wires = []; // {node, handler, el}
  handlers.forEach((hh) => {
    const g = el("g", { class: "handler q-" + hh.h.queue, transform: "translate(" + hh.x + "," + hh.y + ")" }, gNodes);
    el("rect", { width: H_W, height: H_H }, g);
    const short = hh.h.name.replace(/^([a-z_]+)\.receivers\./, "$1.");
    const every = hh.h.topics.includes("*");
    const label = short + (every ? " ← every topic" : "");
    el("text", { x: 8, y: 17 }, g).textContent = label.length > 38 ? label.slice(0, 37) + "…" : label;
    el("text", { x: H_W - 8, y: 17, "text-anchor": "end", class: "queue" }, g).textContent = hh.h.queue;
    el("title", {}, g).textContent = hh.h.name + " ← " + hh.h.topics.join(", ") + " (queue " + hh.h.queue + ")";
    const res = hh.h.topics.map(globToRe);
    const targets = nodes.filter((n) => n.topics.some((t) => res.some((re) => re.test(t))));
    if (every) return;
    targets.forEach((n) => {
      const x1 = n.x + NODE_W, y1 = n.y + NODE_H / 2, x2 = hh.x, y2 = hh.y + H_H / 2, mx = x1 + (x2 - x1) * 0.6;
      const w = el("path", { d: "M" + x1 + "," + y1 + " C" + mx + "," + y1 + " " + mx + "," + y2 + " " + x2 + "," + y2, class: "wire" }, gWires);
      wires.push({ node: n, handler: hh, el: w });
    });
  });

  nodes.forEach((n) => {
    const g = el("g", { class: "node" + (n.initial ? " initial" : "") + (n.final ? " final" : ""), transform: "translate(" + n.x + "," + n.y + ")" }, gNodes);
    n.g = g;
    g.dataset.topics = n.topics.join(" ");
    el("rect", { width: NODE_W, height: NODE_H }, g);
    el("text", { x: 9, y: 17 }, g).textContent = n.label.length > 27 ? n.label.slice(0, 26) + "…" : n.label;
    n.countEl = el("text", { x: 9, y: 33, class: "count" }, g);
    el("title", {}, g).textContent = n.topics.join(", ");
    renderCount(n);
  });

  function renderCount(n) {
    const c = n.topics.reduce((s, t) => s + (counts[t] || 0), 0);
    n.countEl.textContent = c + (c === 1 ? " event" : " events") + " · 24 h";
  }

  // ---- an order's path
  const hitTopics = [];
  function markPath(topic) {
    hitTopics.push(topic);
    (byTopic[topic] || []).forEach((n) => n.g.classList.add("hit"));
    // the move from the previous state of the same machine
    const prefix = topic.split(".")[0];
    for (let i = hitTopics.length - 2; i >= 0; i--) {
      if (hitTopics[i].split(".")[0] !== prefix) continue;
      const from = (byTopic[hitTopics[i]] || []).filter((n) => !n.topicOnly)[0];
      const to = (byTopic[topic] || []).filter((n) => !n.topicOnly)[0];
      if (from && to) edges.filter((e) => e.from === from.id && e.to === to.id).forEach((e) => e.el.classList.add("hit"));
      break;
    }
    wires.filter((w) => w.node.topics.includes(topic)).forEach((w) => w.el.classList.add("hit"));
  }
  if (path) path.topics.forEach(markPath);

  // ---- live
  document.addEventListener("of:event", (e) => {
    const ev = e.detail.event;
    counts[ev.topic] = (counts[ev.topic] || 0) + 1;
    (byTopic[ev.topic] || []).forEach((n) => {
      renderCount(n);
      n.g.classList.remove("pulse"); void n.g.getBBox(); n.g.classList.add("pulse");
    });
    if (path && ev.order_id === path.order_id) markPath(ev.topic);
  });
})();
