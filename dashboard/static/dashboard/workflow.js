/* The workflow board is rendered by the server (dashboard/selectors.py workflow_board); this adds
   the live counts, an order's path as it moves, and the wiring on demand (a toggle, remembered). */
(function () {
  "use strict";
  const OF = window.OF, path = OF.page.path;
  const board = document.getElementById("workflow");
  if (!board) return;
  const boxes = Array.from(board.querySelectorAll(".box"));
  const byTopic = {};
  boxes.forEach((b) => b.dataset.topics.split(" ").filter(Boolean).forEach((t) => (byTopic[t] = byTopic[t] || []).push(b)));

  const toggle = document.getElementById("show-wiring");
  const KEY = "of.workflow.wiring";
  function setWiring(on) { board.classList.toggle("show-wiring", on); toggle.checked = on; }
  setWiring(localStorage.getItem(KEY) === "1");
  toggle.addEventListener("change", () => { localStorage.setItem(KEY, toggle.checked ? "1" : "0"); setWiring(toggle.checked); });

  /* a box's moves on demand: hovering or focusing a state lights the states it can move to */
  boxes.forEach((b) => {
    b.tabIndex = 0;
    const next = (b.dataset.next || "").split(" ").filter(Boolean).map((id) => document.getElementById("box-" + id));
    const on = () => next.forEach((n) => n && n.classList.add("next"));
    const off = () => next.forEach((n) => n && n.classList.remove("next"));
    b.addEventListener("mouseenter", on); b.addEventListener("focus", on);
    b.addEventListener("mouseleave", off); b.addEventListener("blur", off);
  });

  document.addEventListener("of:event", (e) => {
    const ev = e.detail.event;
    (byTopic[ev.topic] || []).forEach((b) => {
      const c = Number(b.dataset.count || 0) + 1;
      b.dataset.count = c;
      b.querySelector(".count").textContent = c;
      b.classList.remove("pulse"); void b.offsetWidth; b.classList.add("pulse");
      if (path && ev.order_id === path.order_id) b.classList.add("hit");
    });
  });
})();
