/* The patron chat: the ask page and the widget panel both run this (plain JS, no build step).
 *
 * Transport: the patron socket (docs/protocol.md); when a WebSocket cannot be opened, long-polling
 * over HTTPS with POSTs (the "HTTP fallback transport"). Both resume with `after`, and messages are
 * kept by seq, so a reload, a navigation or a reconnect loses nothing and doubles nothing.
 * Safety: every body is put in the page as text (textContent); only http(s) links become links.
 * Privacy: the chat lives in sessionStorage of the page's own origin (gone when the tab closes,
 * which matters on a library's public computers); no cookies. One thing stays in localStorage: a random
 * device id sent with a chat start (docs/protocol.md, "device"), which a librarian's block is keyed by.
 */
(function () {
  "use strict";
  if (window.VRChat) return;
  var KEEP = 300; // messages kept in sessionStorage for redrawing after a page load

  function $(root, name) { return root.querySelector('[data-vr="' + name + '"]'); }
  function fmt(s, args) {
    return String(s || "").replace(/\{(\w+)\}/g, function (m, k) { return args[k] != null ? String(args[k]) : m; });
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function rid() {
    var a = new Uint8Array(12);
    (window.crypto || {}).getRandomValues ? crypto.getRandomValues(a) : a.forEach(function (_, i) { a[i] = Math.random() * 256; });
    return Array.prototype.map.call(a, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }
  function size(n) { return n < 1024 ? n + " B" : n < 1048576 ? Math.round(n / 1024) + " KB" : (n / 1048576).toFixed(1) + " MB"; }

  // Text in, text out: links become <a> only when they parse as http(s) URLs.
  var URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
  function linkify(parent, text) {
    var last = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      var raw = m[0].replace(/[.,;:!?)\]]+$/, ""), u = null;
      try { u = new URL(raw); } catch (e) { u = null; }
      if (!u || (u.protocol !== "http:" && u.protocol !== "https:")) continue;
      parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = el("a", "", raw);
      a.href = u.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.appendChild(a);
      last = m.index + raw.length;
      URL_RE.lastIndex = last;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  // The browser's device id: random, made once, kept in localStorage (not sessionStorage: a block must
  // outlive the tab). Blocked storage: no id, and a block can then only be by address.
  function deviceId() {
    try {
      var id = localStorage.getItem("vr-device");
      if (!id || !/^[0-9a-f]{16,64}$/.test(id)) { id = rid() + rid(); localStorage.setItem("vr-device", id); }
      return id;
    } catch (e) { return ""; }
  }

  function store(key) {
    return {
      get: function () { try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { return null; } },
      set: function (v) { try { sessionStorage.setItem(key, JSON.stringify(v)); } catch (e) { /* full or blocked */ } },
      clear: function () { try { sessionStorage.removeItem(key); } catch (e) { /* blocked */ } }
    };
  }

  function Chat(root, cfg) {
    var S = cfg.strings || {}, base = cfg.base || "", self = this;
    var box = store("vrchat:" + cfg.consortium);
    var st = null; // {id, token, after, msgs: [frame], outbox: [{client_id, body}], transport, state, key, ...}
    var ws = null, joined = false, wsFails = 0, polling = false, pollCtl = null, timer = null, typingSent = 0;
    var typingTimer = null, stopped = false, seen = {};
    var ui = {};
    ["start", "start-form", "start-error", "lib-input", "lib-list", "lib-hint", "zip", "unsure", "question", "name",
      "email", "chat", "status", "who", "log", "typing", "chat-error", "send-form", "msg", "file", "end", "qform-box",
      "qform-note", "qform", "q-question", "q-email", "q-name", "q-deadline", "remember", "qform-error", "after", "after-note", "transcript-form",
      "t-email", "t-result", "survey-form", "s-comment", "s-result", "new", "avail", "suggest", "suggest-list", "wait-suggest",
      "wait-suggest-list"].forEach(function (n) { ui[n] = $(root, n); });

    function save() {
      if (!st) return;
      var cur = box.get(); // the widget's loader owns `open`: keep what it wrote
      if (cur && cur.id === st.id && "open" in cur) st.open = cur.open;
      box.set(st);
    }
    function api(path, opts) {
      opts = opts || {};
      var headers = opts.headers || {};
      if (st && st.token && opts.auth !== false) headers.Authorization = "Bearer " + st.token;
      if (opts.json) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
      return fetch(base + path, { method: opts.method || "GET", headers: headers, body: opts.body, cache: "no-store",
        credentials: "omit", signal: opts.signal }).then(function (r) {
        return r.text().then(function (t) {
          var data = null;
          try { data = t ? JSON.parse(t) : null; } catch (e) { data = null; }
          return { status: r.status, ok: r.ok, data: data };
        });
      });
    }
    function show(name, on) { if (ui[name]) ui[name].hidden = !on; }
    function say(name, text) { if (ui[name]) ui[name].textContent = text || ""; }

    // --- the library picker: type-ahead by name or city -------------------------------------
    // picker.js is loaded at once where there is a library field, but apart from this script: the widget
    // embedded for one library has none, and its first load stays within its size budget.
    var chosen = "", picker = null;
    if (ui["lib-input"]) {
      var loadPicker = function () {
        if (picker) return;
        picker = true;
        var s = document.createElement("script");
        s.src = base + "/static/routing/patron/picker.js";
        s.onload = function () {
          window.VRPicker({ ui: ui, S: S, libs: cfg.libraries || [], say: say, el: el, fmt: fmt,
            choose: function (slug) { chosen = slug; if (slug) availability(); } });
        };
        document.head.appendChild(s);
      };
      loadPicker();
      ui.unsure.addEventListener("change", function () {
        var off = ui.unsure.checked;
        ui["lib-input"].disabled = ui.zip.disabled = off;
        if (off) { chosen = ""; ui["lib-input"].value = ui.zip.value = ""; ui["lib-list"].hidden = true; say("lib-hint", ""); }
      });
    }

    // --- the knowledge base's answers: while typing the question, and while waiting ------------
    // suggest.js (find, draw) is loaded the first time there is something to look up, not with the chat.
    var suggestTimer = null, suggestAsked = "", waitSuggested = "", suggester = null, suggestQ = [];
    function withSuggester(fn) {
      if (suggester) return fn(suggester);
      if (suggestQ.push(fn) > 1) return;
      var s = document.createElement("script");
      s.src = base + "/static/routing/patron/suggest.js";
      s.onload = function () {
        suggester = window.VRSuggest({ S: S, cfg: cfg, base: base, root: root, api: api, served: selfServed, el: el });
        suggestQ.splice(0).forEach(function (f) { f(suggester); });
      };
      document.head.appendChild(s);
    }
    function suggestWhileTyping() {
      clearTimeout(suggestTimer);
      suggestTimer = setTimeout(function () {
        var text = ui.question.value.trim();
        var library = cfg.library || chosen;
        var key = text + "|" + library;
        if (key === suggestAsked) return;
        suggestAsked = key;
        if (text.length < 4) { show("suggest", false); return; }
        withSuggester(function (k) {
          k.find(text, library).then(function (answers) {
            if (suggestAsked !== key || st) return; // typed on, or the chat has started
            show("suggest", k.draw(ui["suggest-list"], answers, false) > 0);
          });
        });
      }, 350);
    }
    ui.question.addEventListener("input", suggestWhileTyping);
    function suggestWhileWaiting(s) {
      var waiting = s.state === "queued" && !st.qsent && !st.served;
      if (!waiting) { show("wait-suggest", false); return; }
      if (waitSuggested === st.id) return;
      waitSuggested = st.id;
      withSuggester(function (k) {
        k.find(st.question || "", st.library || "").then(function (answers) {
          if (!st || !st.state || st.state.state !== "queued") return;
          show("wait-suggest", k.draw(ui["wait-suggest-list"], answers, true) > 0);
        });
      });
    }
    function selfServed(id, button) {
      if (!st) return;
      button.disabled = true;
      api("/api/v1/chats/" + st.id + "/self-served", { method: "POST", json: { answer: id } }).then(function (r) {
        if (r.ok) {
          st.served = true;
          save();
          show("wait-suggest", false);
          handle(r.data);
          ui["new"].focus();
        } else {
          button.disabled = false;
          say("chat-error", r.status === 409 ? S.self_served_failed : S.failed);
        }
      }, function () { button.disabled = false; say("chat-error", S.failed); });
    }

    // --- starting -----------------------------------------------------------------------
    ui["start-form"].addEventListener("submit", function (e) {
      e.preventDefault();
      var question = ui.question.value.trim();
      ui.question.removeAttribute("aria-invalid");
      if (!question) { ui.question.setAttribute("aria-invalid", "true"); say("start-error", S.invalid); ui.question.focus(); return; }
      var body = { question: question, name: ui.name.value.trim(), email: ui.email.value.trim() };
      if (cfg.library) body.library = cfg.library;
      else if (chosen) body.library = chosen;
      else if (ui.zip && ui.zip.value.trim() && !ui.unsure.checked) body.zip = ui.zip.value.trim();
      if (cfg.lang && cfg.lang !== "en") body.language = cfg.lang;
      var device = deviceId();
      // "Remember me on this device" (docs/patron.md): sent only when ticked, and only with the device id.
      if (device && ui.remember && ui.remember.checked) body.remember = true;
      var button = ui["start-form"].querySelector("button[type=submit]");
      button.disabled = true;
      say("start-error", "");
      api("/api/v1/" + cfg.consortium + "/chats", { method: "POST", json: device ? Object.assign({ device: device }, body) : body,
        auth: false }).then(function (r) {
        button.disabled = false;
        if (r.status === 201) {
          st = { id: r.data.id, token: r.data.token, after: 0, msgs: [], outbox: [], transport: "", state: null,
            key: "", open: true, question: question, email: body.email, name: body.name,
            library: body.library || "", zip: body.zip || "" };
          save();
          ui["start-form"].reset();
          show("suggest", false);
          suggestAsked = "";
          begin(true);
        } else if (r.status === 503 && r.data && r.data.error && r.data.error.code === "busy") busy(body, S.busy);
        else if (r.status === 403 && r.data && r.data.error && r.data.error.code === "blocked") busy(body, S.blocked);
        else if (r.status === 403) say("start-error", S.forbidden_site);
        else if (r.status === 429) say("start-error", S.rate_limited);
        else if (r.status === 400) {
          var f = (r.data && r.data.error && r.data.error.fields) || {};
          Object.keys(f).forEach(function (k) { var i = ui[k]; if (i) i.setAttribute("aria-invalid", "true"); });
          say("start-error", S.invalid + " " + Object.keys(f).map(function (k) { return k + ": " + f[k].join(", "); }).join("; "));
        } else say("start-error", S.start_failed);
      }, function () { button.disabled = false; say("start-error", S.start_failed); });
    });

    // Past the service's capacity a new chat is refused at once (503 "busy", docs/protocol.md), and so is a
    // blocked patron's (403 "blocked", told in neutral words): no chat exists, so the question form (the one
    // offered when nobody can answer) takes what was typed.
    var busyStart = null;
    function busy(body, text, quiet) {
      busyStart = body;
      show("start", false);
      show("after", false);
      show("chat", true);
      show("send-form", false);
      show("log", false);
      say("status", text);
      ui["q-question"].value = body.question;
      ui["q-email"].value = body.email || "";
      ui["q-name"].value = body.name || "";
      say("qform-note", "");
      say("qform-error", "");
      show("qform-box", true);
      if (!quiet) (body.email ? ui["q-question"] : ui["q-email"]).focus();
    }

    // The honest launcher (docs/patron.md): before the patron types, what a chat started now would meet.
    // Closed for the page's library: the question form comes first (a chat would find nobody); it gives
    // way to the chat again when the service opens, unless the patron has started writing their question.
    var availTimer = null, closedFirst = false;
    function availability() {
      clearTimeout(availTimer);
      if (!ui.avail) return;
      if (st && st.id) { say("avail", ""); return; }
      var lib = cfg.library || chosen || "";
      api("/api/v1/" + cfg.consortium + "/availability?lang=" + encodeURIComponent(cfg.lang || "en") +
        (lib ? "&library=" + encodeURIComponent(lib) : ""), { auth: false }).then(function (r) {
        if (r.ok && r.data && !(st && st.id)) showAvailability(r.data);
      }, function () { /* the form works without it */ }).then(function () {
        if (!(st && st.id)) availTimer = setTimeout(availability, 60000);
      });
    }
    function showAvailability(a) {
      var text = a.message;
      if (a.state === "closed" && a.opens_at) {
        text = fmt(S.avail_closed, { when: new Intl.DateTimeFormat(cfg.lang || undefined,
          { weekday: "long", hour: "numeric", minute: "2-digit" }).format(new Date(a.opens_at)) });
      }
      ui.avail.setAttribute("data-state", a.state);
      say("avail", text);
      // Only where the page names the library: a patron who picks one keeps the form they are filling in
      // (the line above says it is closed; a chat started all the same offers the question form).
      if (a.state === "closed" && !busyStart && cfg.library) {
        closedFirst = true;
        busy({ question: ui.question.value.trim(), email: ui.email.value.trim(), name: ui.name.value.trim(),
          library: cfg.library || chosen || "", zip: ui.zip && !ui.unsure.checked ? ui.zip.value.trim() : "" },
          S.avail_form, true);
      } else if (a.state !== "closed" && closedFirst && busyStart && !ui["q-question"].value.trim()) {
        closedFirst = false;
        busyStart = null;
        show("qform-box", false);
        show("chat", false);
        show("start", true);
        say("status", "");
      }
    }

    function begin(focus) {
      busyStart = null;
      closedFirst = false;
      clearTimeout(availTimer);
      say("avail", "");
      show("start", false);
      show("after", false);
      show("chat", true);
      show("send-form", true);
      show("log", true);
      ui.log.textContent = "";
      seen = {};
      (st.msgs || []).forEach(function (f) { draw(f); });
      (st.outbox || []).forEach(function (o) { drawPending(o); });
      if (st.state) applyState(st.state, true);
      else say("status", S.connecting);
      stopped = !!st.qsent; // a question left for email: nothing more will come
      connect();
      if (focus) ui.msg.focus();
    }

    // --- frames in ----------------------------------------------------------------------
    function handle(f) {
      if (!f || !st) return;
      // A line sent again whose message had already come: the contract's echo, marked `resent`.
      if (f.type === "message" && f.resent) return f.client_id ? unqueue(f.client_id) : undefined;
      if (f.type === "message") return onMessage(f);
      if (/^(share_|page_push)/.test(f.type)) return share(f);
      if (f.type === "state") return applyState(f);
      if (f.type === "typing" && f.sender === "librarian") {
        var n = st.state && st.state.librarian && st.state.librarian.name;
        say("typing", n ? fmt(S.typing, { name: n }) : S.typing_anon);
        clearTimeout(typingTimer);
        typingTimer = setTimeout(function () { say("typing", ""); }, 6000);
      }
      if (f.type === "error") {
        if (f.code === "rate_limited") return held(f.client_id);
        if (f.client_id) { unqueue(f.client_id); say("chat-error", refused(f.code)); }
      }
    }
    // A refused line in the patron's words, by its code (the frame's detail is English).
    function refused(code) { return S["refused_" + code] || S.refused; }
    function onMessage(f) {
      if (seen[f.seq]) return;
      if (f.sender === "patron" && f.client_id) unqueue(f.client_id);
      if (f.sender === "librarian") say("typing", "");
      if (f.sender !== "patron" && cfg.onMessage) cfg.onMessage(f);
      st.msgs.push(f);
      st.msgs.sort(function (a, b) { return a.seq - b.seq; });
      if (st.msgs.length > KEEP) st.msgs = st.msgs.slice(-KEEP);
      st.after = Math.max(st.after || 0, f.seq);
      save();
      draw(f);
    }
    // Sharing (share.js) is loaded with the first sharing frame, not with the chat: frames wait for it.
    var shareQ = [], sharer = null;
    function share(f) {
      if (f.type === "share_request" && cfg.onMessage) cfg.onMessage(f); // the widget's launcher shows it
      if (sharer) return sharer.handle(f);
      if (shareQ.push(f) > 1) return;
      var s = document.createElement("script");
      s.src = base + "/static/routing/patron/share.js";
      s.onload = function () {
        sharer = window.VRShare({ S: S, base: base, log: ui.log, file: ui.file, save: save, get: function () { return st; },
          send: function (x) { return ws && joined ? (ws.send(JSON.stringify(x)), true) : false; } });
        shareQ.splice(0).forEach(sharer.handle);
      };
      document.head.appendChild(s);
    }
    function unqueue(cid) {
      st.outbox = (st.outbox || []).filter(function (o) { return o.client_id !== cid; });
      var p = ui.log.querySelector('[data-cid="' + cid + '"]');
      if (p) p.remove();
      save();
    }
    function bubble(f) {
      var who = f.sender === "patron" ? S.you : f.name || S.librarian;
      var d = el("div", "vr-msg vr-" + f.sender);
      if (f.sender !== "system") {
        var meta = el("p", "vr-meta");
        meta.appendChild(el("b", "", who));
        if (f.at) {
          var t = el("time", "", " " + new Date(f.at).toLocaleTimeString(cfg.lang || undefined, { hour: "numeric", minute: "2-digit" }));
          t.dateTime = f.at;
          meta.appendChild(t);
        }
        d.appendChild(meta);
      }
      var body = el("p", "vr-body");
      if (f.file) fileLink(body, f.file);
      else linkify(body, String(f.body || ""));
      d.appendChild(body);
      return d;
    }
    function draw(f) {
      if (seen[f.seq]) return;
      seen[f.seq] = true;
      var d = bubble(f);
      d.setAttribute("data-seq", f.seq);
      // In seq order, before any pending (unacknowledged) messages.
      var after = null, kids = ui.log.children;
      for (var i = 0; i < kids.length; i++) {
        var s = kids[i].getAttribute("data-seq");
        if (s === null || +s > f.seq) { after = kids[i]; break; }
      }
      ui.log.insertBefore(d, after);
      if (!after) ui.log.scrollTop = ui.log.scrollHeight;
    }
    function drawPending(o) {
      var d = bubble({ sender: "patron", body: o.body });
      d.className += " vr-pending";
      d.setAttribute("data-cid", o.client_id);
      d.querySelector(".vr-meta").appendChild(el("span", "", " · " + S.sending));
      ui.log.appendChild(d);
      ui.log.scrollTop = ui.log.scrollHeight;
    }
    function fileLink(parent, file) {
      var a = el("a", "", fmt(S.file_label, { name: file.name, size: size(file.size || 0) }));
      a.href = "#";
      parent.appendChild(a);
      function blob() {
        return fetch(base + file.url, { headers: { Authorization: "Bearer " + st.token }, credentials: "omit" })
          .then(function (r) { if (!r.ok) throw new Error(r.status); return r.blob(); });
      }
      a.addEventListener("click", function (e) {
        e.preventDefault();
        blob().then(function (b) {
          var x = document.createElement("a");
          x.href = URL.createObjectURL(b);
          x.download = file.name;
          document.body.appendChild(x); x.click(); x.remove();
        });
      });
      if (/^image\//.test(file.type)) {
        blob().then(function (b) {
          var img = el("img");
          img.alt = file.name;
          img.src = URL.createObjectURL(b);
          parent.appendChild(img);
        }, function () { /* the link still works, or says why */ });
      }
    }

    function applyState(s, quiet) {
      var prev = st.state;
      st.state = s;
      save();
      var live = s.state === "queued" || s.state === "active";
      ui.msg.disabled = ui.file.disabled = ui.end.disabled = !live;
      ui["send-form"].querySelector("button[type=submit]").disabled = !live;
      var text = "";
      if (s.state === "queued") {
        text = s.position ? fmt(S.queued, { position: s.position }) + " " : "";
        text += s.estimated_wait ? fmt(S.wait, { minutes: Math.max(1, Math.round(s.estimated_wait / 60)) }) : S.wait_soon;
      } else if (s.state === "unstaffed") text = S.unstaffed;
      else if (s.state === "ended") text = S.ended;
      else if (s.state === "abandoned") text = S.abandoned;
      if (!prev || prev.state !== s.state || prev.position !== s.position || !quiet) say("status", text);
      var lib = s.librarian;
      if (s.state === "active" && lib) {
        var libName = lib.library && lib.library.name;
        var who = lib.name && libName ? fmt(S.active, { name: lib.name, library: libName }) : S.active_anon;
        say("who", who + (s.partner && libName ? " " + fmt(S.partner, { library: libName }) : ""));
        if (!text) say("status", "");
      } else say("who", "");
      var form = (s.offer_question_form || s.state === "unstaffed") && !st.qsent;
      if (form && ui["qform-box"].hidden) {
        ui["q-question"].value = ui["q-question"].value || st.question || "";
        ui["q-email"].value = ui["q-email"].value || st.email || "";
        ui["q-name"].value = ui["q-name"].value || st.name || "";
        say("qform-note", s.state === "unstaffed" ? "" : S.offer_form);
      }
      show("qform-box", form);
      suggestWhileWaiting(s);
      if (!live || st.qsent) finish(s.state === "unstaffed" || st.qsent);
    }
    function finish(noChat) {
      // noChat: nobody answered (unstaffed, or a question left by email): no transcript, no survey.
      say("typing", "");
      show("after", true);
      say("after-note", st.qsent ? S.question_sent : st.served ? S.self_served_done : "");
      show("transcript-form", !noChat);
      show("survey-form", !noChat && !!(st.msgs || []).some(function (m) { return m.sender === "librarian"; }));
      if (st.surveyed) say("s-result", S.survey_thanks);
      if (st.emailed) say("t-result", fmt(S.transcript_sent, { email: st.emailed }));
      if (ui["t-email"] && !ui["t-email"].value) ui["t-email"].value = st.email || "";
    }

    // --- transports ---------------------------------------------------------------------
    function connect() {
      if (stopped || !st) return;
      if (st.transport === "poll" || !window.WebSocket) return poll();
      var url = base ? base.replace(/^http/, "ws") : location.origin.replace(/^http/, "ws");
      joined = false;
      try { ws = new WebSocket(url + "/ws/patron/"); } catch (e) { return fallBack(); }
      var sock = ws, guard = setTimeout(function () { if (!joined) { sock.onclose = null; sock.close(); fallBack(); } }, 7000);
      sock.onopen = function () { sock.send(JSON.stringify({ type: "join", chat: st.id, token: st.token, after: st.after || 0 })); };
      sock.onmessage = function (ev) {
        var f;
        try { f = JSON.parse(ev.data); } catch (e) { return; }
        if (f.type === "joined") { joined = true; wsFails = 0; clearTimeout(guard); flush(); if (sharer || st.pageShare) share(f); return; }
        handle(f);
      };
      sock.onclose = function (ev) {
        clearTimeout(guard);
        if (sock !== ws) return;
        ws = null;
        if (sharer) sharer.handle({ type: "closed" });
        if (ev.code === 4403) return gone();
        if (stopped) return;
        if (!joined && ++wsFails >= 2) return fallBack();
        joined = false;
        say("status", S.reconnecting);
        timer = setTimeout(connect, Math.min(15000, 1000 * Math.pow(2, wsFails++)));
      };
    }
    function fallBack() {
      ws = null;
      st.transport = "poll";
      save();
      poll();
    }
    function poll() {
      if (polling || stopped || !st) return;
      polling = true;
      var fails = 0, first = true;
      (function next() {
        if (stopped || !st) { polling = false; return; }
        pollCtl = window.AbortController ? new AbortController() : null;
        // The first poll of a page asks for the state afresh, so it answers at once.
        var key = first ? "" : st.key || "";
        first = false;
        api("/api/v1/chats/" + st.id + "/events?after=" + (st.after || 0) + "&state=" + key,
          { signal: pollCtl && pollCtl.signal }).then(function (r) {
          if (r.status === 404 || r.status === 403) { polling = false; return gone(); }
          if (!r.ok) throw new Error(r.status);
          if (fails) { fails = 0; if (st.state) applyState(st.state); }
          if (!joined) { joined = true; flush(); }
          (r.data.frames || []).forEach(handle);
          st.key = r.data.state_key;
          save();
          var s = st.state && st.state.state;
          if (s === "ended" || s === "abandoned") { polling = false; return; }
          next();
        }).catch(function () {
          if (stopped) { polling = false; return; }
          joined = false;
          say("status", S.reconnecting);
          setTimeout(next, Math.min(10000, 1000 * Math.pow(2, fails++)));
        });
      })();
    }
    function gone() {
      reset();
      say("start-error", S.chat_closed);
    }
    function transmit(o) {
      if (ws && joined) return ws.send(JSON.stringify({ type: "message", body: o.body, client_id: o.client_id }));
      if (st.transport !== "poll") return; // the socket is (re)connecting: sent on join
      api("/api/v1/chats/" + st.id + "/messages", { method: "POST", json: { body: o.body, client_id: o.client_id } })
        .then(function (r) {
          if (r.ok) handle(r.data);
          else if (r.status === 429) held(o.client_id);
          else if (r.status >= 400 && r.status < 500) {
            unqueue(o.client_id);
            say("chat-error", refused(r.data && r.data.error && r.data.error.code));
          }
        }, function () {
          // Still in the outbox (and idempotent by client_id): try again shortly.
          setTimeout(function () {
            if (st && st.outbox.some(function (x) { return x.client_id === o.client_id; })) transmit(o);
          }, 3000);
        });
    }
    function flush() { (st.outbox || []).forEach(transmit); }
    // Past the chat's message rate: the line stays in the outbox (shown pending) and goes again later.
    function held(cid) {
      say("chat-error", S.refused_rate_limited);
      setTimeout(function () {
        var o = st && st.outbox.filter(function (x) { return x.client_id === cid; })[0];
        if (o) transmit(o);
      }, 5000);
    }

    // --- frames out ---------------------------------------------------------------------
    ui["send-form"].addEventListener("submit", function (e) {
      e.preventDefault();
      var body = ui.msg.value.trim();
      if (!body || !st) return;
      var o = { client_id: rid(), body: body };
      st.outbox.push(o);
      save();
      ui.msg.value = "";
      say("chat-error", "");
      drawPending(o);
      transmit(o);
    });
    ui.msg.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); ui["send-form"].requestSubmit ? ui["send-form"].requestSubmit() : ui["send-form"].dispatchEvent(new Event("submit")); }
    });
    ui.msg.addEventListener("input", function () {
      var now = Date.now();
      if (!st || now - typingSent < 3000 || !ui.msg.value) return;
      typingSent = now;
      if (ws && joined) ws.send('{"type":"typing"}');
      else if (st.transport === "poll") api("/api/v1/chats/" + st.id + "/typing", { method: "POST" }).catch(function () {});
    });
    ui.end.addEventListener("click", function () {
      if (!st) return;
      if (ws && joined) ws.send('{"type":"end"}');
      else api("/api/v1/chats/" + st.id + "/end", { method: "POST" }).then(function (r) { if (r.ok) handle(r.data); });
    });
    ui.file.addEventListener("change", function () {
      var file = ui.file.files && ui.file.files[0];
      if (!file || !st) return;
      ui.file.value = "";
      if (file.size > 10 * 1048576) return say("chat-error", S.file_too_large);
      var fd = new FormData();
      fd.append("file", file);
      fd.append("client_id", rid());
      say("chat-error", "");
      api("/api/v1/chats/" + st.id + "/files", { method: "POST", body: fd }).then(function (r) {
        if (r.ok) handle(r.data);
        else say("chat-error", r.status === 413 ? S.file_too_large : r.status === 400 ? S.file_type : S.file_failed);
      }, function () { say("chat-error", S.file_failed); });
    });

    ui.qform.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { question: ui["q-question"].value.trim(), email: ui["q-email"].value.trim(),
        name: ui["q-name"].value.trim() };
      var from = st || busyStart || {};
      if (st) { body.chat = st.id; body.token = st.token; }
      if (ui["q-deadline"] && ui["q-deadline"].value) body.deadline = ui["q-deadline"].value;
      if (cfg.lang && cfg.lang !== "en") body.language = cfg.lang; // the mails to the patron are in it
      if (from.library) body.library = from.library;
      else if (from.zip) body.zip = from.zip;
      api("/api/v1/" + cfg.consortium + "/questions", { method: "POST", json: body, auth: false }).then(function (r) {
        // "An answer is on its way": by when, from the follow-up's due time (the patron's own deadline, or
        // the library's usual time).
        var sent = r.status === 201 && r.data && r.data.due_at
          ? fmt(S.question_due, { due: new Date(r.data.due_at).toLocaleString(cfg.lang || undefined,
            { dateStyle: "medium", timeStyle: "short" }) })
          : S.question_sent;
        if (r.status === 201 && !st) { // the service was busy: no chat to finish
          busyStart = null;
          show("qform-box", false);
          say("status", sent);
          ui["start-form"].reset();
          return;
        }
        if (r.status === 201) {
          st.qsent = true;
          save();
          show("qform-box", false);
          say("status", sent);
          finish(true);
          stop();
          ui["new"].focus();
        } else {
          var f = (r.data && r.data.error && r.data.error.fields) || {};
          say("qform-error", S.invalid + " " + Object.keys(f).map(function (k) { return k + ": " + f[k].join(", "); }).join("; "));
        }
      }, function () { say("qform-error", S.failed); });
    });
    ui["transcript-form"].addEventListener("submit", function (e) {
      e.preventDefault();
      var email = ui["t-email"].value.trim();
      api("/api/v1/chats/" + st.id + "/transcript", { method: "POST", json: { email: email } }).then(function (r) {
        if (r.ok) { st.emailed = email; save(); say("t-result", fmt(S.transcript_sent, { email: email })); }
        else say("t-result", S.invalid);
      }, function () { say("t-result", S.failed); });
    });
    ui["survey-form"].addEventListener("submit", function (e) {
      e.preventDefault();
      var r = ui["survey-form"].querySelector("input[name=vr-rating]:checked");
      if (!r) { say("s-result", S.invalid); return; }
      api("/api/v1/chats/" + st.id + "/survey", { method: "POST", json: { rating: +r.value, comment: ui["s-comment"].value.trim() } })
        .then(function (res) {
          if (res.status === 201 || res.status === 409) {
            st.surveyed = true; save();
            say("s-result", res.status === 201 ? S.survey_thanks : S.survey_done);
            ui["survey-form"].querySelector("button").disabled = true;
          } else say("s-result", S.failed);
        }, function () { say("s-result", S.failed); });
    });
    function reset() {
      stop();
      box.clear();
      st = null;
      show("chat", false);
      show("after", false);
      show("qform-box", false);
      show("wait-suggest", false);
      waitSuggested = "";
      show("start", true);
      ["status", "who", "typing", "chat-error", "t-result", "s-result", "start-error"].forEach(function (n) { say(n, ""); });
      ui["survey-form"].reset();
      ui["survey-form"].querySelector("button").disabled = false;
    }
    ui["new"].addEventListener("click", function () { reset(); ui.question.focus(); availability(); });

    function stop() {
      stopped = true;
      clearTimeout(timer);
      if (pollCtl) pollCtl.abort();
      polling = false;
      if (ws) { var w = ws; ws = null; w.close(); }
    }

    self.stop = stop;
    st = box.get();
    if (st && st.id && st.token) begin(false);
    else availability();
  }

  function mountPage() {
    var node = document.querySelector("[data-vr-page] [data-vr-root]"), conf = document.getElementById("vrchat-config");
    if (node && conf) new Chat(node, JSON.parse(conf.textContent));
  }

  // The widget: the loader (widget.js) calls this when the launcher is first opened.
  function mountWidget(container, opts) {
    var url = opts.base + "/api/v1/" + encodeURIComponent(opts.consortium) + "/widget?lang=" + encodeURIComponent(opts.lang || "") +
      (opts.library ? "&library=" + encodeURIComponent(opts.library) : "");
    return fetch(url, { credentials: "omit", cache: "no-store" }).then(function (r) {
      return r.json().then(function (data) { return { ok: r.ok, status: r.status, data: data }; });
    }).then(function (r) {
      if (!r.ok) throw r;
      // Server-rendered markup of our own template: no patron or librarian text is in it.
      container.innerHTML = r.data.html;
      var chat = new Chat(container.querySelector("[data-vr-root]"), {
        base: opts.base, consortium: opts.consortium, library: r.data.library, lang: r.data.lang,
        strings: r.data.strings, libraries: r.data.libraries, onMessage: opts.onMessage });
      return chat;
    }).catch(function (r) {
      var es = (opts.lang || "").indexOf("es") === 0;
      var p = el("p", "vr-error", r && r.status === 403
        ? (es ? "Este sitio web no está autorizado para usar este servicio de chat." : "This website is not set up to use this chat service.")
        : (es ? "El chat no está disponible ahora. Inténtelo más tarde." : "The chat is not available right now. Please try again later."));
      p.setAttribute("role", "alert");
      p.setAttribute("data-vr", "unavailable");
      container.textContent = "";
      container.appendChild(p);
      return null;
    });
  }

  window.VRChat = { Chat: Chat, mountWidget: mountWidget, linkify: linkify };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountPage);
  else mountPage();
})();
