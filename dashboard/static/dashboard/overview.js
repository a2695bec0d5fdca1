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
    duration: (s) => {
      if (s == null) return "—";
      if (s < 90) return s >= 10 ? Math.round(s) + " s" : s.toFixed(1) + " s";
      if (s < 5400) return (s / 60).toFixed(1) + " min";
      if (s < 172800) return (s / 3600).toFixed(1) + " h";
      return (s / 86400).toFixed(1) + " d";
    },
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
    tbody.innerHTML = (stats.recent_orders || []).map((o) =>
      '<tr data-order-id="' + o.id + '"><td><a href="' + "/dashboard/orders/" + o.id + "/?store=" + OF.store + '">#' + o.number +
      '</a></td><td><span class="chip ' + o.status + '">' + o.status + '</span></td><td><span class="chip ' + o.payment_status + '">' +
      o.payment_status + '</span></td><td class="num">' + o.total + " " + o.currency + "</td><td>" + OF.time(o.created_at) + "</td></tr>"
    ).join("") || '<tr><td colspan="5" class="muted">No orders yet.</td></tr>';
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
    if (ev.topic === "order.created") bump("orders", ev.created_at);
    else if (ev.topic === "order.paid") bump("paid", ev.created_at);
    else if (ev.topic === "order.payment_failed") bump("failed", ev.created_at);
  });
})();
