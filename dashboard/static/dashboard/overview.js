/* Overview: cards and recent orders from stats pushes, charts bumped by live events, the live
   alert feed and event stream. Initial data comes from the page (no extra request). */
(function () {
  "use strict";
  const OF = window.OF, page = OF.page;
  const series = page.series || [];
  const placed = page.placed;

  function pick(obj, path) { return path.split(".").reduce((o, k) => (o == null ? o : o[k]), obj); }
  const fmt = {
    pct: (v) => (v == null ? "—" : (v * 100).toFixed(1) + " %"),
    money: (v) => v,
    len: (v) => (v || []).length,
    duration: (s) => OF.duration(s),
  };
  function renderStats(stats) {
    document.querySelectorAll("[data-k]").forEach((el) => {
      const f = fmt[el.dataset.f];
      const v = pick(stats, el.dataset.k);
      const text = f ? f(v) : String(v);
      if (el.textContent !== text) {
        el.textContent = text;
        const card = el.closest(".card");
        if (card) { card.classList.remove("flash"); void card.offsetWidth; card.classList.add("flash"); }
      }
    });
    const tbody = document.querySelector("#recent-orders tbody");
    tbody.innerHTML = (stats.recent_orders || []).map(orderRow).join("") || EMPTY_ORDERS;
  }

  /* The recent-orders table: rebuilt by each stats push, and moved at once by the events. */
  const EMPTY_ORDERS = '<tr class="empty"><td colspan="5" class="muted">No orders yet.</td></tr>';
  const chip = (v) => '<span class="chip ' + OF.esc(v) + '">' + OF.esc(v) + "</span>";
  function orderRow(o) {
    return '<tr data-order-id="' + OF.esc(o.id) + '"><td><a href="/dashboard/orders/' + OF.esc(o.id) + "/?store=" + OF.store + '">#' + OF.esc(o.number) +
      '</a></td><td data-f="status">' + chip(o.status) + '</td><td data-f="payment_status">' + chip(o.payment_status) +
      '</td><td class="num">' + OF.esc(o.total) + " " + OF.esc(o.currency) + "</td><td>" + OF.time(o.created_at) + "</td></tr>";
  }
  const PAYMENT_BY_TOPIC = { "payment.processing": "processing", "payment.retrying": "retrying", "payment.processed": "succeeded",
    "payment.failed": "failed", "payment.cancelled": "failed", "payment.refunded": "refunded" };
  function moveOrder(ev) {
    if (!ev.order_id) return;
    const tbody = document.querySelector("#recent-orders tbody");
    let row = tbody.querySelector('tr[data-order-id="' + CSS.escape(ev.order_id) + '"]');
    const d = ev.data || {};
    if (!row && ev.topic === "order.created") {
      const empty = tbody.querySelector("tr.empty");
      if (empty) empty.remove();
      tbody.insertAdjacentHTML("afterbegin", orderRow({ id: ev.order_id, number: d.number, status: "pending", payment_status: "pending",
        total: d.total, currency: d.currency || page.currency, created_at: ev.created_at }));
      while (tbody.children.length > 10) tbody.removeChild(tbody.lastChild);
      row = tbody.firstElementChild;
    } else if (!row) return;
    let field = null, value = null;
    if (ev.topic.startsWith("order.") && d.to) { field = "status"; value = d.to; }
    else if (PAYMENT_BY_TOPIC[ev.topic]) { field = "payment_status"; value = PAYMENT_BY_TOPIC[ev.topic]; }
    if (field) row.querySelector('[data-f="' + field + '"]').innerHTML = chip(value);
    row.classList.remove("new"); void row.offsetWidth; row.classList.add("new");
  }

  const ordersSvg = document.getElementById("chart-orders"), paySvg = document.getElementById("chart-payments");
  function drawCharts() {
    OF.barChart(ordersSvg, series, "orders");
    OF.rateChart(paySvg, series, "paid", "failed");
  }
  function bump(key, iso) {
    const t = new Date(iso || Date.now());
    t.setSeconds(0, 0);
    let last = series[series.length - 1];
    while (!last || new Date(last.t) < t) {
      const next = last ? new Date(new Date(last.t).getTime() + 60000) : t;
      series.push({ t: next.toISOString(), orders: 0, paid: 0, failed: 0 });
      if (series.length > 60) series.shift();
      last = series[series.length - 1];
    }
    last[key] += 1;
    drawCharts();
  }

  const stream = document.getElementById("event-stream");
  const seen = new Set();
  let lastId = 0;
  function addEvent(ev, fresh) {
    if (seen.has(ev.id)) return;
    seen.add(ev.id);
    lastId = Math.max(lastId, ev.id || 0);
    const li = document.createElement("li");
    const mine = placed && ev.order_id === placed;
    li.className = (fresh ? "new " : "") + (mine ? "mine" : "");
    li.dataset.topic = ev.topic;
    if (ev.order_id) li.dataset.orderId = ev.order_id;
    const num = ev.data && ev.data.number ? " #" + ev.data.number : "";
    li.innerHTML = '<span class="t">' + OF.time(ev.created_at) + '</span><span class="topic">' + OF.esc(ev.topic) +
      "</span>" + (ev.order_id ? '<a class="small" href="/dashboard/orders/' + ev.order_id + "/?store=" + OF.store + '">order' + OF.esc(num) + "</a>" : "") +
      '<span class="small muted">' + OF.esc(ev.actor || "") + "</span>";
    stream.insertBefore(li, stream.firstChild);
    while (stream.children.length > 200) stream.removeChild(stream.lastChild);
  }

  const feed = document.getElementById("alert-feed");
  function upsertAlert(a) {
    const empty = feed.querySelector(".empty");
    if (empty) empty.remove();
    let li = feed.querySelector('[data-alert-id="' + a.id + '"]');
    if (!li) {
      li = document.createElement("li");
      li.dataset.alertId = a.id;
      feed.insertBefore(li, feed.firstChild);
    }
    li.className = "new";
    li.innerHTML = '<span class="t">' + OF.time(a.at) + '</span><span class="chip ' + OF.esc(a.severity) + '">' + OF.esc(a.severity) +
      '</span><span class="msg">' + OF.esc(a.message) + (a.count > 1 ? " ×" + a.count : "") + '</span> <span class="chip status ' +
      OF.esc(a.status) + '">' + OF.esc(a.status) + "</span>";
  }

  renderStats(page.stats);
  drawCharts();
  (page.events || []).forEach((ev) => addEvent(ev, false));
  window.addEventListener("resize", drawCharts);
  document.addEventListener("of:stats", (e) => renderStats(e.detail.stats));
  // (Re)connected: fetch what happened between the page render (or the drop) and now.
  document.addEventListener("of:connected", () => {
    fetch("/dashboard/events.json?store=" + encodeURIComponent(OF.store) + "&after=" + lastId, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : { events: [] }))
      .then((j) => j.events.forEach((ev) => {
        if (seen.has(ev.id)) return;
        document.dispatchEvent(new CustomEvent("of:event", { detail: { type: "event", event: ev } }));
      }))
      .catch(() => {});
  });
  document.addEventListener("of:alert", (e) => upsertAlert(e.detail.alert));
  document.addEventListener("of:event", (e) => {
    const ev = e.detail.event;
    addEvent(ev, true);
    moveOrder(ev);
    if (ev.topic === "order.created") bump("orders", ev.created_at);
    else if (ev.topic === "order.paid") bump("paid", ev.created_at);
    else if (ev.topic === "order.payment_failed") bump("failed", ev.created_at);
  });
})();
