/* Shared by every dashboard page: the websocket to /ws/dashboard/, re-dispatched as DOM events
   ("of:event", "of:alert", "of:stats"), a toast for every new alert, small helpers. */
(function () {
  "use strict";
  const OF = (window.OF = window.OF || {});
  const dataEl = document.getElementById("page-data");
  OF.page = dataEl ? JSON.parse(dataEl.textContent) : {};
  OF.store = document.body.dataset.store;

  OF.esc = function (s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  };
  /* One time format everywhere: 24 h, in the store's time zone (the server renders the same). */
  function clock(opts) {
    try { return new Intl.DateTimeFormat("en-GB", Object.assign({ hourCycle: "h23", timeZone: OF.page.tz || "UTC" }, opts)); }
    catch (e) { return new Intl.DateTimeFormat("en-GB", Object.assign({ hourCycle: "h23", timeZone: "UTC" }, opts)); }
  }
  const hms = clock({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const hm = clock({ hour: "2-digit", minute: "2-digit" });
  OF.time = function (iso) { return hms.format(iso ? new Date(iso) : new Date()); };
  OF.hm = function (iso) { return hm.format(iso ? new Date(iso) : new Date()); };
  /* 42 s · 3.5 min · 2.1 h · 1.5 d, as the templates' `duration` filter */
  OF.duration = function (s) {
    if (s == null) return "—";
    if (s < 90) return s >= 10 ? Math.round(s) + " s" : s.toFixed(1) + " s";
    if (s < 5400) return (s / 60).toFixed(1) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  };
  OF.csrf = function () {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };

  const live = document.getElementById("live");
  function setLive(state, text) {
    if (!live) return;
    live.className = "live " + state;
    live.textContent = text;
  }

  let delay = 500;
  OF.connected = false;
  function connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(proto + "//" + location.host + "/ws/dashboard/?store=" + encodeURIComponent(OF.store));
    OF.socket = ws;
    ws.onopen = () => { delay = 500; };
    ws.onmessage = (msg) => {
      let data;
      try { data = JSON.parse(msg.data); } catch (e) { return; }
      if (data.type === "hello") {
        OF.connected = true;
        setLive("on", "live");
        document.dispatchEvent(new CustomEvent("of:connected", { detail: data }));
        return;
      }
      document.dispatchEvent(new CustomEvent("of:" + data.type, { detail: data }));
    };
    ws.onclose = (ev) => {
      OF.connected = false;
      if (ev.code === 4401 || ev.code === 4403) {
        setLive("off", ev.code === 4401 ? "logged out" : "no access");
        return;
      }
      setLive("off", "reconnecting…");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  if (OF.store && "WebSocket" in window) connect();

  /* toasts: one for every newly opened alert, on whatever page is open */
  const toasts = document.getElementById("toasts");
  OF.toast = function (title, body, level) {
    if (!toasts) return;
    const el = document.createElement("div");
    el.className = "toast " + (level || "warning");
    el.setAttribute("role", "status");
    el.innerHTML = "<b>" + OF.esc(title) + "</b><span>" + OF.esc(body) + "</span>";
    toasts.appendChild(el);
    setTimeout(() => el.remove(), 8000);
    el.addEventListener("click", () => el.remove());
  };
  document.addEventListener("of:alert", (e) => {
    const a = e.detail.alert;
    if (a.change === "opened") OF.toast("New alert · " + a.severity, a.message, a.severity);
  });
})();
