// The live board: draws a snapshot (first from the page, then from /ws/coordinator/) and counts
// waits up every second by itself, so the server sends a new snapshot only when something changed.
// Everything people typed (names, library names) goes in with textContent, never as markup.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("board-data").textContent);
  // The words, in the coordinator's language (coordination/i18n.py); {placeholders} filled here.
  const S = JSON.parse(document.getElementById("board-strings").textContent);
  const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m));
  let board = data;
  let receivedAt = Date.now();
  const conn = document.getElementById("conn");

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
  }

  function since(iso) {
    return iso ? duration((Date.now() - Date.parse(iso)) / 1000) : "";
  }

  function fill(tbody, rows, empty, columns) {
    tbody.replaceChildren();
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", empty, "empty");
      td.colSpan = columns;
      tr.append(td);
      tbody.append(tr);
      return;
    }
    for (const cells of rows) {
      const tr = el("tr");
      for (const cell of cells) tr.append(cell instanceof Node ? wrap(cell) : el("td", cell));
      tbody.append(tr);
    }
  }

  function wrap(node) {
    const td = el("td");
    td.append(node);
    return td;
  }

  function waitCell(w) {
    const elapsed = w.wait_seconds + (Date.now() - receivedAt) / 1000;
    const span = el("span", duration(elapsed), elapsed > 120 ? "wait long" : "wait");
    span.dataset.arrived = w.arrived_at;
    return span;
  }

  function draw() {
    const b = board;
    document.getElementById("c-present").textContent = b.present_count;
    document.getElementById("c-waiting").textContent = b.waiting.length;
    document.getElementById("c-active").textContent = b.active.length;
    document.getElementById("c-arrived").textContent = b.today.arrived;
    // Today's chats by outcome (routing/outcomes.py): they add up to "chats today".
    for (const outcome of ["answered", "abandoned", "withdrawn", "unstaffed", "open"]) {
      document.getElementById("c-" + outcome).textContent = b.today[outcome];
    }

    const alerts = document.getElementById("alerts");
    alerts.replaceChildren();
    for (const a of b.alerts) {
      const text = fmt(a.kind === "absent" ? S.absent : S.understaffed, a);
      alerts.append(el("p", text, "notice " + (a.kind === "absent" ? "bad" : "warn")));
    }
    // The alerts to coordinators (alerts/), worded by the server in the reader's language, each with its fix.
    for (const a of b.raised || []) {
      const p = el("p", a.text + " ", "notice warn raised");
      p.dataset.kind = a.kind;
      const link = el("a", a.fix);
      link.href = a.link;
      p.append(link);
      alerts.append(p);
    }

    fill(document.querySelector("#waiting tbody"), b.waiting.map((w) => [
      waitCell(w), w.step || "–", w.home_library || S.no_home, w.queues.join(", "), w.language || "",
    ]), S.nobody_waiting, 5);
    fill(document.querySelector("#active tbody"), b.active.map((a) => [
      since(a.since), a.librarian || "", a.library || "", a.home_library || S.no_home,
      (a.step || "") + (a.partner ? " " + S.partner : ""),
    ]), S.no_chat, 5);
    fill(document.querySelector("#queues tbody"), b.queues.map((q) => {
      const name = el("span", q.name);
      if (q.rota_driven) name.append(" ", el("span", S.rota, "tag"));
      return [name, el("span", q.open ? S.open : S.closed, q.open ? "ok" : "muted"), q.present, q.waiting];
    }), S.no_queues, 4);

    const shifts = document.getElementById("shifts");
    shifts.replaceChildren();
    if (!b.shifts.length) shifts.append(el("li", S.no_shift, "empty"));
    for (const s of b.shifts) {
      const li = el("li");
      const end = new Date(s.end).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
      const head = el("strong", fmt(S.until, {queue: s.queue_name, time: end}));
      li.append(head, el("span", " " + fmt(S.present_of, s), s.present < s.min ? "bad" : "ok"));
      const crew = el("ul", null, "crew");
      for (const c of s.crew) crew.append(el("li", `${c.name} (${c.library})`, c.present ? "here" : "away"));
      li.append(crew);
      shifts.append(li);
    }

    const libraries = document.getElementById("libraries");
    libraries.replaceChildren();
    if (!b.libraries.length) libraries.append(el("li", S.nobody_present, "empty"));
    for (const lib of b.libraries) {
      const li = el("li");
      li.append(el("strong", lib.name));
      const names = el("ul", null, "crew");
      for (const p of lib.present) names.append(el("li", fmt(S.load, {...p, queues: p.queues.join(", ")}), "here"));
      li.append(names);
      libraries.append(li);
    }
  }

  function tick() {
    for (const span of document.querySelectorAll("#waiting .wait")) {
      const elapsed = (Date.now() - Date.parse(span.dataset.arrived)) / 1000;
      span.textContent = duration(elapsed);
      span.className = elapsed > 120 ? "wait long" : "wait";
    }
  }

  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/coordinator/?consortium=${encodeURIComponent(data.consortium.slug)}`);
    ws.onopen = () => { conn.dataset.state = "connected"; conn.textContent = S.live; delay = 1000; };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "board") { board = frame; receivedAt = Date.now(); draw(); }
    };
    ws.onclose = (event) => {
      if (event.code === 4401 || event.code === 4403) {
        conn.dataset.state = "signed-out"; conn.textContent = S.signed_out;
        return;
      }
      conn.dataset.state = "reconnecting"; conn.textContent = S.reconnecting;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  draw();
  setInterval(tick, 1000);
  connect();
})();
