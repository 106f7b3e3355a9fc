// The staff console: waiting chats, the librarian's chats in tabs, and the home library beside each.
//
// The socket is the only source of live state. The server's hello after every (re)connection is
// the truth about offers and held chats; every chat is resumed with `join` from the last sequence
// number this page has, and messages are kept by sequence number, so a reconnect can neither lose
// nor double a line. Messages the librarian sends wait in an outbox until the server echoes them
// (matched by client_id) and are sent again after a reconnect; the server stores each client_id once.

import { IdleWatch } from "./idle.js";
import { Notifier } from "./notify.js";
import { StaffSocket } from "./socket.js";
import { appendText, clockTime, formatDuration } from "./text.js";

const body = document.body;
const ME = {
  username: body.dataset.username,
  library: body.dataset.library,
  capacity: Number(body.dataset.capacity || 3),
};
const CSRF = body.dataset.csrf;
// Server minus browser clock: waits and countdowns are computed from server times.
const SKEW = Date.parse(body.dataset.serverNow) - Date.now() || 0;
const serverNow = () => Date.now() + SKEW;
const TYPING_SHOW_MS = 5000;
const TYPING_SEND_EVERY_MS = 3000;

const $ = (sel, root = document) => root.querySelector(sel);
const offers = new Map(); // chat id -> {frame, el}
const chats = new Map(); // chat id -> ChatView
let selected = null;
let presence = "away";
let idleAwayPending = false;
const accepting = new Map(); // chat id -> when Accept was clicked
let lastTabChoice = 0; // when the librarian last chose a tab themselves

// --- notices --------------------------------------------------------------------------------------

function notice(text, kind = "info", { sticky = false, key = null, action = null } = {}) {
  const box = $("#notices");
  if (key) box.querySelector(`[data-key="${key}"]`)?.remove();
  const el = document.createElement("div");
  el.className = `notice ${kind}`;
  el.setAttribute("role", kind === "bad" ? "alert" : "status");
  if (key) el.dataset.key = key;
  const p = document.createElement("p");
  p.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Dismiss";
  close.addEventListener("click", () => el.remove());
  el.append(p);
  if (action) {
    const act = document.createElement("button");
    act.type = "button";
    act.className = "primary";
    act.textContent = action.label;
    act.addEventListener("click", () => action.run(el));
    el.append(act);
  }
  el.append(close);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild.remove();
  if (!sticky) setTimeout(() => el.remove(), 12000);
  return el;
}

// --- HTTP ---------------------------------------------------------------------------------------

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (r.status === 401) location.assign("/accounts/login/?next=/staff/");
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

async function postJSON(url, data) {
  const r = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": CSRF },
    body: JSON.stringify(data),
  });
  const answer = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = answer.error || {};
    const fields = e.fields ? Object.entries(e.fields).map(([k, v]) => `${k}: ${v.join(", ")}`).join("; ") : "";
    throw new Error(fields || e.detail || `failed (${r.status})`);
  }
  return answer;
}

// --- the socket, presence and the connection indicator ----------------------------------------------

const socket = new StaffSocket(body.dataset.ws, { onFrame: handle, onState: showConnection });
const connectedWaiters = [];

// Resolves once the server has taken the console back (after its hello has been handled).
function whenConnected() {
  return socket.isOpen ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve));
}

// End, transfer and referral are safe to send a little later: a click during a reconnect is kept
// and sent when the connection is back, instead of being lost with only a notice to show for it.
async function sendSoon(frame, what) {
  if (socket.send(frame)) return true;
  notice(`Not connected: the ${what} will be sent as soon as the connection is back.`, "warn",
    { key: `soon-${frame.chat}` });
  await whenConnected();
  return socket.send(frame);
}

function showConnection(state, detail) {
  const el = $("#conn");
  el.dataset.state = state;
  const text = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: detail.retryAt
      ? `Connection lost — retrying in ${Math.max(1, Math.round((detail.retryAt - Date.now()) / 1000))} s`
      : "Reconnecting…",
    offline: "Offline — waiting for the network",
    "signed-out": "Signed out",
    forbidden: "Not allowed",
  }[state] || state;
  el.textContent = text;
  $("#presence").disabled = state !== "connected";
  // Accepting needs the server now: while the socket is down the buttons say so by being disabled.
  for (const entry of offers.values()) refreshAccept(entry.frame.chat, entry.el);
  if (state === "connected") {
    for (const resolve of connectedWaiters.splice(0)) resolve();
  }
  if (state === "signed-out") {
    notice("Your session ended. Sign in again to go on; your chats wait for you for a short while.", "bad",
      { sticky: true, key: "conn" });
    setTimeout(() => location.assign("/accounts/login/?next=/staff/"), 1500);
  } else if (state === "forbidden") {
    notice("The server refused this console (not a staff account, or an unknown address).", "bad",
      { sticky: true, key: "conn" });
  }
  if (state === "reconnecting" && detail.retryAt) {
    // Keep the countdown honest while waiting.
    clearTimeout(showConnection.tick);
    showConnection.tick = setTimeout(() => {
      if (socket.state === "reconnecting") showConnection("reconnecting", detail);
    }, 1000);
  }
}

function setPresence(status, reason, frame = {}) {
  presence = status;
  const button = $("#presence");
  button.setAttribute("aria-pressed", status === "available" ? "true" : "false");
  button.textContent = status === "available" ? "Available" : "Away";
  button.title = status === "available" ? "You are offered new chats. Click to go away."
    : "You are not offered new chats. Click when you are ready.";
  if (status === "away") showShift(null);
  if (status === "away" && reason === "offer_expired") {
    notice("You were set to Away because a chat offered to you expired. Click Away to become available again.",
      "warn", { sticky: true, key: "presence" });
  } else if (status === "away" && reason === "shift_end") {
    const at = frame.ends_at ? ` (${clockTime(frame.ends_at)})` : "";
    notice(`You were set to Away at the end of your shift${at}. Chats you hold stay with you. `
      + "Click Away to become available again.", "info", { sticky: true, key: "presence" });
  } else if (status === "available") {
    $("#notices").querySelector('[data-key="presence"]')?.remove();
  }
}

// --- the end of the shift -------------------------------------------------------------------------
// The server keeps the end of the librarian's shift and sets them away then (even with this page
// asleep); the console shows it beside the toggle and, a few minutes before, a notice with a way to
// stay on. `shift` carries the end (null: no automatic away), `shift_ending` the warning.

function showShift(frame) {
  const el = $("#shift-end");
  const box = $("#notices");
  const ends = frame && frame.ends_at ? frame.ends_at : null;
  el.hidden = !ends;
  el.textContent = ends ? `Shift ends ${clockTime(ends)}` : "";
  el.dataset.warning = frame && frame.type === "shift_ending" ? "true" : "false";
  if (!frame || frame.type !== "shift_ending") {
    box.querySelector('[data-key="shift"]')?.remove();
    return;
  }
  const minutes = Math.max(1, Math.round((frame.extend_by || 1800) / 60));
  notice(`Your shift ends at ${clockTime(ends)}: you will be set to Away then, and chats you hold stay `
    + "with you. Covering overtime? Stay available a while longer.", "info", {
    sticky: true,
    key: "shift",
    action: {
      label: `I'm staying on (${minutes} more minute${minutes === 1 ? "" : "s"})`,
      run: (el) => {
        el.querySelector("button.primary").disabled = true;
        sendSoon({ type: "stay_on" }, "request to stay on");
      },
    },
  });
}

$("#presence").addEventListener("click", () => {
  socket.send({ type: "presence", status: presence === "available" ? "away" : "available" });
});

// --- idle auto-away -----------------------------------------------------------------------------------

const IDLE_KEY = "vr-staff-idle";
const params = new URLSearchParams(location.search);
function idleSeconds() {
  if (params.has("idle")) return Number(params.get("idle")) || 0; // per page, for tests and kiosks
  const saved = localStorage.getItem(IDLE_KEY);
  return saved !== null ? Number(saved) : Number(body.dataset.idleSeconds || 900);
}
const idle = new IdleWatch(idleSeconds(), (seconds) => {
  if (presence !== "available") return;
  const minutes = seconds >= 60 ? `${Math.round(seconds / 60)} minutes` : `${seconds} seconds`;
  if (!socket.send({ type: "presence", status: "away" })) idleAwayPending = true;
  notice(`You were set to Away after ${minutes} without activity. Click Away to become available again.`,
    "warn", { sticky: true, key: "presence" });
});
{
  const select = $("#opt-idle");
  const current = String(idleSeconds());
  if (![...select.options].some((o) => o.value === current)) select.add(new Option(`${current} seconds`, current));
  select.value = current;
  select.addEventListener("change", () => {
    localStorage.setItem(IDLE_KEY, select.value);
    idle.setSeconds(Number(select.value));
  });
}

// --- notifications --------------------------------------------------------------------------------

const notifier = new Notifier();
$("#opt-sound").checked = notifier.sound;
$("#opt-desktop").checked = notifier.desktop;
$("#opt-sound").addEventListener("change", (e) => notifier.setSound(e.target.checked));
$("#opt-desktop").addEventListener("change", async (e) => {
  e.target.checked = await notifier.setDesktop(e.target.checked);
  if (!e.target.checked && "Notification" in window && Notification.permission === "denied") {
    notice("The browser blocks notifications for this site; allow them in its site settings.", "warn");
  }
});

// --- waiting chats ------------------------------------------------------------------------------

function offerKind(frame) {
  if (frame.transfer_note || frame.step === "transfer") return "transfer";
  const home = frame.home_library && frame.home_library.slug;
  if (home && home === ME.library) return "local";
  if (home && frame.queue === ME.library) return "partner";
  return "consortium";
}

function renderOffers() {
  const list = $("#offers");
  const sorted = [...offers.values()].sort((a, b) =>
    Date.parse(a.frame.waiting_since) - Date.parse(b.frame.waiting_since));
  // Oldest first, by original arrival. Only what is out of place moves: moving a node takes it out
  // of the page for a moment, and a click landing on an offer at that moment was lost (an offer
  // arriving while the librarian clicks Accept on another).
  let before = null;
  for (const { el } of sorted) {
    const there = before ? before.nextElementSibling : list.firstElementChild;
    if (there !== el) {
      if (before) before.after(el);
      else list.prepend(el);
    }
    before = el;
  }
  $("#offer-count").textContent = String(offers.size);
  $("#offers-empty").hidden = offers.size > 0;
  updateTitle();
}

function addOffer(frame, { quiet = false } = {}) {
  const existing = offers.get(frame.chat);
  const el = existing ? existing.el : $("#tpl-offer").content.firstElementChild.cloneNode(true);
  const kind = offerKind(frame);
  el.dataset.chat = frame.chat;
  el.dataset.kind = kind;
  el.dataset.mode = frame.mode;
  const badge = $(".badge", el);
  badge.dataset.kind = kind;
  badge.textContent = kind;
  $(".home", el).textContent = frame.home_library ? frame.home_library.name : "No home library";
  $(".question", el).textContent = frame.question || "";
  const note = $(".transfer-note", el);
  note.hidden = !frame.transfer_note;
  note.textContent = frame.transfer_note ? `Transfer note: ${frame.transfer_note}` : "";
  $(".patron", el).textContent = frame.patron && frame.patron.name ? `from ${frame.patron.name}` : "";
  const accept = $(".accept", el);
  refreshAccept(frame.chat, el);
  accept.setAttribute("aria-label", `Accept the chat from ${frame.home_library ? frame.home_library.name : "the consortium"}`);
  $(".decline", el).setAttribute("aria-label", "Decline this chat");
  if (!existing) {
    accept.addEventListener("click", () => acceptOffer(frame.chat));
    $(".decline", el).addEventListener("click", () => {
      socket.send({ type: "decline", chat: frame.chat });
    });
  }
  offers.set(frame.chat, { frame, el });
  tickOffer(offers.get(frame.chat));
  renderOffers();
  if (!existing && !quiet) {
    notifier.beep();
    notifier.show("A patron is waiting", `${frame.home_library ? frame.home_library.name + ": " : ""}${frame.question}`);
  }
}

function refreshAccept(chatId, el) {
  const accept = $(".accept", el);
  accept.disabled = accepting.has(chatId) || socket.state !== "connected";
  accept.textContent = accepting.has(chatId) ? "Accepting…" : "Accept";
}

function removeOffer(chatId) {
  const entry = offers.get(chatId);
  if (!entry) return null;
  entry.el.remove();
  offers.delete(chatId);
  accepting.delete(chatId);
  renderOffers();
  return entry.frame;
}

function acceptOffer(chatId) {
  if (!socket.send({ type: "accept", chat: chatId })) {
    notice("Not connected: wait for the connection to come back, then accept.", "warn");
    return;
  }
  accepting.set(chatId, Date.now());
  const entry = offers.get(chatId);
  if (entry) addOffer(entry.frame, { quiet: true });
}

function tickOffer({ frame, el }) {
  const waited = (serverNow() - Date.parse(frame.waiting_since)) / 1000;
  $(".wait", el).textContent = `waiting ${formatDuration(waited)}`;
  const countdown = $(".countdown", el);
  if (frame.mode === "direct" && frame.expires_at) {
    const left = (Date.parse(frame.expires_at) - serverNow()) / 1000;
    countdown.hidden = false;
    countdown.textContent = left > 0 ? `accept within ${formatDuration(left)}` : "expiring…";
  } else {
    countdown.hidden = true;
  }
}

setInterval(() => {
  for (const entry of offers.values()) tickOffer(entry);
}, 1000);

const WITHDRAWN = {
  accepted: "was taken by another librarian",
  expired: "expired before it was accepted",
  abandoned: "was abandoned: the patron left",
  ended: "ended: the patron left",
  closed: "can no longer be answered here",
};

// --- chats ----------------------------------------------------------------------------------------

class ChatView {
  constructor(id, info) {
    this.id = id;
    this.info = info || {};
    this.maxSeq = 0;
    this.lines = new Map(); // seq -> li
    this.pending = new Map(); // client_id -> {frame, li}
    this.unread = 0;
    this.state = "active";
    this.referred = false;
    this.closeWhenEnded = false;
    this.classification = null;
    this.patronLeft = false;
    this.typingTimer = null;
    this.lastTypingSent = 0;

    this.tab = $("#tpl-tab").content.firstElementChild.cloneNode(true);
    this.panel = $("#tpl-chat").content.firstElementChild.cloneNode(true);
    this.tab.id = `tab-${id}`;
    this.panel.id = `panel-${id}`;
    this.tab.setAttribute("aria-controls", this.panel.id);
    this.panel.setAttribute("aria-labelledby", this.tab.id);
    this.panel.dataset.chat = id;
    this.tab.dataset.chat = id;
    this.panel.hidden = true;
    this.tab.tabIndex = -1;
    this.log = $(".log", this.panel);
    this.textarea = $("textarea", this.panel);
    this.textarea.id = `compose-${id}`;
    this.textarea.setAttribute("aria-label", "Message to the patron");
    $(".canned", this.panel).setAttribute("aria-label", "Insert a canned response");
    this.tab.addEventListener("click", () => {
      lastTabChoice = Date.now();
      select(id);
    });
    this.tab.addEventListener("keydown", (e) => tabKeys(e, id));
    this.wire();
    $("#tabs").append(this.tab);
    $("#panels").append(this.panel);
    this.render();
  }

  wire() {
    const form = $(".composer", this.panel);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.sendComposer();
    });
    this.textarea.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.sendComposer();
      }
    });
    this.textarea.addEventListener("input", () => {
      const now = Date.now();
      if (!this.isInternal() && this.textarea.value && now - this.lastTypingSent > TYPING_SEND_EVERY_MS) {
        this.lastTypingSent = now;
        socket.send({ type: "typing", chat: this.id });
      }
    });
    $(".internal", this.panel).addEventListener("change", () => {
      $(".composer", this.panel).dataset.internal = this.isInternal() ? "true" : "false";
      this.textarea.placeholder = this.isInternal()
        ? "Internal note: staff see it, the patron never does."
        : "Type a reply. Enter sends, Shift+Enter starts a new line.";
    });
    $(".canned", this.panel).addEventListener("change", (e) => {
      const chosen = (this.info.canned || []).find((c) => String(c.id) === e.target.value);
      e.target.value = "";
      if (!chosen) return;
      const ta = this.textarea;
      const start = ta.selectionStart ?? ta.value.length;
      ta.value = ta.value.slice(0, start) + chosen.body + ta.value.slice(ta.selectionEnd ?? start);
      ta.focus();
      ta.selectionStart = ta.selectionEnd = start + chosen.body.length;
    });
    const picker = $(".attach-input", this.panel);
    $(".attach", this.panel).addEventListener("click", () => picker.click());
    picker.addEventListener("change", () => {
      const file = picker.files && picker.files[0];
      picker.value = "";
      if (file) this.upload(file);
    });
    $(".do-transfer", this.panel).addEventListener("click", () => openTransfer(this));
    $(".do-refer", this.panel).addEventListener("click", () => openRefer(this));
    $(".do-end", this.panel).addEventListener("click", () => openEnd(this));
    $(".do-classify", this.panel).addEventListener("click", () => openEnd(this));
    $(".do-close", this.panel).addEventListener("click", () => closeChat(this.id));
  }

  isInternal() {
    return $(".internal", this.panel).checked;
  }

  render() {
    const name = (this.info.patron && this.info.patron.name) || "Patron";
    const home = this.info.home_library;
    $(".label", this.tab).textContent = home ? `${name} · ${home.name}` : name;
    $(".patron-name", this.panel).textContent = name;
    $(".home", this.panel).textContent = home ? `${home.name} patron` : "No home library";
    const note = $(".transfer-note", this.panel);
    note.hidden = !this.info.transfer_note;
    note.textContent = this.info.transfer_note ? `Transfer note (staff only): ${this.info.transfer_note}` : "";
    const active = this.state === "active";
    this.tab.dataset.ended = active ? "false" : "true";
    $(".chat-state", this.panel).textContent = active ? (this.patronLeft ? "The patron left the chat" : "")
      : this.endedText();
    for (const el of this.panel.querySelectorAll(".composer textarea, .composer button, .composer select, .composer input, .chat-actions button")) {
      el.disabled = !active;
    }
    $(".chat-actions", this.panel).hidden = !active;
    $(".composer", this.panel).hidden = !active;
    const box = $(".ended-box", this.panel);
    box.hidden = active;
    $(".ended-text", box).textContent = this.endedText();
    $(".do-classify", box).hidden = this.state === "transferred" || this.state === "lost";
    const canned = $(".canned", this.panel);
    if (canned.options.length - 1 !== (this.info.canned || []).length) {
      canned.length = 1;
      for (const c of this.info.canned || []) canned.add(new Option(c.title, String(c.id)));
    }
    const unread = $(".unread", this.tab);
    unread.dataset.n = String(this.unread);
    $(".n", unread).textContent = String(this.unread);
  }

  endedText() {
    return {
      ended: "This chat has ended.",
      transferred: "You transferred this chat.",
      lost: "This chat went back to the queue while you were disconnected.",
      gone: "This chat is no longer yours.",
    }[this.state] || "";
  }

  async loadInfo() {
    try {
      const info = await getJSON(`/staff/api/chats/${encodeURIComponent(this.id)}`);
      this.info = { ...this.info, ...info, transfer_note: this.info.transfer_note || info.transfer_note };
      if (info.classification) {
        this.classification = info.classification;
      }
      this.render();
      this.loadLibrary();
    } catch (e) {
      /* keep what the frames told us */
    }
  }

  async loadLibrary() {
    const aside = $(".side", this.panel);
    const url = this.info.policy_url;
    if (!url) {
      aside.replaceChildren();
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No home library: the patron did not name one and no ZIP code matched.";
      aside.append(p);
      return;
    }
    if (aside.dataset.loaded === url) return;
    try {
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) throw new Error(String(r.status));
      // Our own server's fragment: the policy Markdown is rendered safe there (libraries.policy).
      aside.innerHTML = await r.text();
      aside.dataset.loaded = url;
    } catch (e) {
      aside.textContent = "The home library's page could not be loaded.";
    }
  }

  join() {
    socket.send({ type: "join", chat: this.id, after: this.maxSeq });
    // Whatever did not reach the server before the connection dropped goes again; the server
    // stores a client_id once and echoes the stored message.
    for (const { frame } of this.pending.values()) socket.send(frame);
  }

  addMessage(frame) {
    if (frame.client_id && this.pending.has(frame.client_id) && frame.sender === "librarian") {
      this.pending.get(frame.client_id).li.remove();
      this.pending.delete(frame.client_id);
    }
    if (this.lines.has(frame.seq)) return false; // already shown: a resume or a gap fill repeated it
    const li = messageElement(frame, this.info);
    li.dataset.seq = String(frame.seq);
    const nearBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
    if (frame.seq > this.maxSeq) {
      const firstPending = this.log.querySelector('[data-pending="true"]');
      this.log.insertBefore(li, firstPending);
      this.maxSeq = frame.seq;
    } else {
      const after = [...this.lines.keys()].filter((s) => s > frame.seq).sort((a, b) => a - b)[0];
      this.log.insertBefore(li, after !== undefined ? this.lines.get(after) : null);
    }
    this.lines.set(frame.seq, li);
    if (nearBottom || frame.sender === "librarian") this.log.scrollTop = this.log.scrollHeight;
    if (frame.sender === "patron") {
      this.showTyping(false);
      if (selected !== this.id || document.visibilityState !== "visible") {
        this.unread += 1;
        this.render();
        updateTitle();
      }
    }
    return true;
  }

  sendComposer() {
    const text = this.textarea.value;
    if (!text.trim() || this.state !== "active") return;
    const internal = this.isInternal();
    const clientId = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const frame = { type: "message", chat: this.id, body: text, client_id: clientId };
    if (internal) frame.internal = true;
    const li = messageElement({ sender: "librarian", body: text, internal, name: "You", at: new Date().toISOString() },
      this.info);
    li.dataset.pending = "true";
    li.dataset.clientId = clientId;
    this.log.append(li);
    this.log.scrollTop = this.log.scrollHeight;
    this.pending.set(clientId, { frame, li });
    socket.send(frame); // if the socket is down it goes after the reconnect (join)
    this.textarea.value = "";
    if (internal) {
      $(".internal", this.panel).checked = false;
      $(".internal", this.panel).dispatchEvent(new Event("change"));
    }
  }

  // Images and PDFs go through the files API (checked by content there); the stored message comes
  // back on the socket like any other, and from this answer too: whichever is first is shown once.
  async upload(file) {
    const form = new FormData();
    form.append("file", file);
    form.append("client_id", `f${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`);
    try {
      const r = await fetch(`/api/v1/chats/${encodeURIComponent(this.id)}/files`, {
        method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": CSRF },
      });
      const answer = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error((answer.error && answer.error.detail) || `failed (${r.status})`);
      this.addMessage(answer);
    } catch (e) {
      notice(`${file.name} was not sent: ${e.message}`, "warn");
    }
  }

  failed(clientId, detail) {
    const entry = this.pending.get(clientId);
    if (!entry) return;
    this.pending.delete(clientId);
    entry.li.dataset.pending = "false";
    entry.li.dataset.failed = "true";
    const why = document.createElement("span");
    why.className = "who error";
    why.textContent = `Not sent: ${detail}`;
    entry.li.append(why);
  }

  showTyping(on) {
    const el = $(".typing", this.panel);
    clearTimeout(this.typingTimer);
    el.textContent = on ? `${(this.info.patron && this.info.patron.name) || "The patron"} is typing…` : "";
    if (on) this.typingTimer = setTimeout(() => { el.textContent = ""; }, TYPING_SHOW_MS);
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const { li } of this.pending.values()) li.remove();
    this.pending.clear();
    this.showTyping(false);
    this.render();
    updateCounts();
    // A chat the librarian ended and classified closes its tab once the server confirms the end.
    if (state === "ended" && this.closeWhenEnded) closeChat(this.id);
  }

  destroy() {
    clearTimeout(this.typingTimer);
    this.tab.remove();
    this.panel.remove();
    this.lines.clear();
    this.pending.clear();
  }
}

function messageElement(frame, info) {
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.sender = frame.sender;
  if (frame.internal) li.dataset.internal = "true";
  const who = document.createElement("span");
  who.className = "who";
  const name = frame.sender === "patron" ? (frame.name || (info.patron && info.patron.name) || "Patron")
    : frame.sender === "system" ? "" : (frame.name || "Librarian");
  who.textContent = [frame.internal ? "Internal note" : "", name, clockTime(frame.at)].filter(Boolean).join(" · ");
  li.append(who);
  const text = document.createElement("span");
  text.className = "body";
  appendText(text, frame.body || "");
  li.append(text);
  if (frame.file && frame.file.url && frame.file.url.startsWith("/")) {
    const a = document.createElement("a");
    a.className = "file";
    a.href = frame.file.url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = `${frame.file.name} (${Math.round((frame.file.size || 0) / 1024)} KB)`;
    li.append(a);
  }
  return li;
}

function openChat(id, info) {
  let view = chats.get(id);
  if (view) {
    view.info = { ...view.info, ...info };
    if (view.state !== "active") view.setState("active");
    view.render();
    return view;
  }
  view = new ChatView(id, info);
  chats.set(id, view);
  view.loadInfo();
  if (!selected) select(id);
  updateCounts();
  return view;
}

function closeChat(id) {
  const view = chats.get(id);
  if (!view) return;
  view.destroy();
  chats.delete(id);
  if (selected === id) {
    selected = null;
    const next = [...chats.keys()][0];
    if (next) select(next);
  }
  updateCounts();
}

function select(id) {
  const view = chats.get(id);
  if (!view) return;
  selected = id;
  for (const other of chats.values()) {
    const on = other.id === id;
    other.tab.setAttribute("aria-selected", on ? "true" : "false");
    other.tab.tabIndex = on ? 0 : -1;
    other.panel.hidden = !on;
  }
  view.unread = 0;
  view.render();
  view.log.scrollTop = view.log.scrollHeight;
  updateTitle();
}

function busyElsewhere(id) {
  const panel = document.activeElement && document.activeElement.closest ? document.activeElement.closest(".chat") : null;
  return !!panel && panel.dataset.chat !== id && !!$("textarea", panel).value.trim();
}

function tabKeys(e, id) {
  const ids = [...chats.keys()];
  const i = ids.indexOf(id);
  let next = null;
  if (e.key === "ArrowRight") next = ids[(i + 1) % ids.length];
  if (e.key === "ArrowLeft") next = ids[(i - 1 + ids.length) % ids.length];
  if (e.key === "Home") next = ids[0];
  if (e.key === "End") next = ids[ids.length - 1];
  if (next) {
    e.preventDefault();
    lastTabChoice = Date.now();
    select(next);
    chats.get(next).tab.focus();
  }
}

function updateCounts() {
  const active = [...chats.values()].filter((c) => c.state === "active").length;
  $("#chat-count").textContent = `${active} of ${ME.capacity}`;
  $("#chats-empty").hidden = chats.size > 0;
  updateTitle();
}

function updateTitle() {
  const unread = [...chats.values()].reduce((n, c) => n + c.unread, 0);
  const waiting = offers.size;
  const parts = [];
  if (waiting) parts.push(`${waiting} waiting`);
  if (unread) parts.push(`${unread} unread`);
  document.title = `${parts.length ? `(${parts.join(", ")}) ` : ""}Console · Staff`;
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && selected && chats.has(selected)) {
    chats.get(selected).unread = 0;
    chats.get(selected).render();
    updateTitle();
  }
});

// --- filling in what a reconnect cannot resume -----------------------------------------------------

async function settleUnheld(view) {
  // The chat ended, was transferred or went back to the queue while we were away: fetch the lines
  // we missed from the transcript (staff who took part may read it), then say what happened.
  try {
    const transcript = await getJSON(`/api/v1/chats/${encodeURIComponent(view.id)}/transcript`);
    for (const m of transcript.messages || []) view.addMessage({ ...m, chat: view.id });
    view.setState(transcript.state === "ended" || transcript.state === "abandoned" ? "ended" : "lost");
  } catch (e) {
    view.setState("gone");
  }
}

// --- frames --------------------------------------------------------------------------------------

function handle(frame) {
  const view = frame.chat ? chats.get(frame.chat) : null;
  switch (frame.type) {
    case "hello": {
      setPresence(frame.presence);
      showShift(frame.presence === "available" ? frame.shift : null);
      if (idleAwayPending && frame.presence === "available") socket.send({ type: "presence", status: "away" });
      idleAwayPending = false;
      const current = new Set((frame.offers || []).map((o) => o.chat));
      for (const id of [...offers.keys()]) if (!current.has(id)) removeOffer(id);
      for (const offer of frame.offers || []) addOffer(offer, { quiet: offers.has(offer.chat) });
      const held = new Set();
      for (const c of frame.chats || []) {
        held.add(c.chat);
        const v = openChat(c.chat, c.home_library ? { home_library: c.home_library } : {});
        v.join();
      }
      for (const v of chats.values()) {
        if (!held.has(v.id) && v.state === "active") settleUnheld(v);
      }
      break;
    }
    case "presence":
      setPresence(frame.status, frame.reason, frame);
      break;
    case "shift":
    case "shift_ending":
      if (presence === "available") showShift(frame);
      break;
    case "offer":
      addOffer(frame);
      break;
    case "offer_withdrawn": {
      const gone = removeOffer(frame.chat);
      if (gone && WITHDRAWN[frame.reason] && !(frame.reason === "accepted" && chats.has(frame.chat))) {
        const from = gone.home_library ? ` from ${gone.home_library.name}` : "";
        notice(`The chat${from} ${WITHDRAWN[frame.reason]}.`, frame.reason === "expired" ? "warn" : "info",
          { key: `offer-${frame.chat}` });
      }
      break;
    }
    case "assigned": {
      const acceptedAt = accepting.get(frame.chat);
      removeOffer(frame.chat);
      const v = openChat(frame.chat, {
        home_library: frame.home_library, patron: frame.patron, policy_url: frame.policy_url,
        question: frame.question, transfer_note: frame.transfer_note,
      });
      v.join();
      v.loadLibrary();
      // Show the chat just accepted, unless the librarian is in the middle of a reply elsewhere:
      // the new tab appears beside it and waits (switching under their fingers loses their place).
      // Nor when they have chosen another tab since clicking Accept.
      if (acceptedAt && lastTabChoice < acceptedAt && !busyElsewhere(frame.chat)) select(frame.chat);
      break;
    }
    case "accept_failed": {
      accepting.delete(frame.chat);
      const entry = offers.get(frame.chat);
      const text = {
        taken: "Another librarian took this chat first.",
        at_capacity: `You already hold ${ME.capacity} chats: end one before accepting another.`,
        not_offered: "That chat is no longer offered to you.",
        ended: "The patron left before the chat was accepted.",
      }[frame.reason] || frame.detail || "The chat could not be accepted.";
      notice(text, frame.reason === "at_capacity" ? "warn" : "info", { key: `offer-${frame.chat}` });
      if (frame.reason === "at_capacity" && entry) addOffer(entry.frame, { quiet: true });
      else removeOffer(frame.chat);
      break;
    }
    case "message":
      if (view) view.addMessage(frame);
      break;
    case "typing":
      if (view && frame.sender === "patron") view.showTyping(true);
      break;
    case "state":
      if (view && (frame.state === "ended" || frame.state === "abandoned")) view.setState("ended");
      break;
    case "unassigned":
      if (view) view.setState({ ended: "ended", transferred: "transferred" }[frame.reason] || "lost");
      break;
    case "patron_presence":
      if (view) {
        view.patronLeft = !frame.present;
        view.render();
      }
      break;
    case "transfer_failed": {
      const text = {
        same_queue: "The chat is already there.",
        closed: "That target is closed now.",
        nobody: "Nobody is present there now.",
        not_found: "That target does not exist (or the chat is no longer yours).",
      }[frame.reason] || frame.detail;
      notice(`Transfer refused: ${text} The chat stays with you.`, "warn");
      break;
    }
    case "referred":
      if (view) view.referred = true;
      notice("Follow-up ticket created; the patron gets a confirmation email.", "info");
      break;
    case "error":
      if (frame.client_id) {
        for (const v of chats.values()) v.failed(frame.client_id, frame.detail || frame.code);
      } else if (frame.code !== "not_found") {
        notice(`The server refused an action: ${frame.detail || frame.code}`, "warn");
      }
      break;
    default:
      break;
  }
}

// --- transfer, refer, end ------------------------------------------------------------------------

async function openTransfer(view) {
  const dialog = $("#dlg-transfer");
  const to = $("#transfer-to");
  to.replaceChildren(new Option("Loading…", ""));
  $("#transfer-note").value = "";
  $("#transfer-who").textContent = "";
  dialog.returnValue = "";
  dialog.onclose = () => {
    dialog.onclose = null; // do not keep the chat's panel alive after it closes
    if (dialog.returnValue !== "ok" || !to.value) return;
    const [kind, target] = to.value.split(/:(.*)/s);
    const frame = { type: "transfer", chat: view.id, to: { [kind]: target }, note: $("#transfer-note").value };
    sendSoon(frame, "transfer");
  };
  dialog.showModal();
  let data;
  try {
    data = await getJSON("/staff/api/presence");
  } catch (e) {
    to.replaceChildren(new Option("Could not load who is present", ""));
    return;
  }
  to.replaceChildren(new Option("Choose…", ""));
  const people = document.createElement("optgroup");
  people.label = "Librarians present";
  for (const l of data.librarians.filter((x) => !x.me)) {
    people.append(new Option(`${l.name} (${l.library_name}) — ${l.active} of ${l.capacity} chats`, `librarian:${l.username}`));
  }
  const groups = { local: document.createElement("optgroup"), shared: document.createElement("optgroup") };
  groups.local.label = "Libraries";
  groups.shared.label = "Shared queues";
  for (const q of data.queues) {
    const others = q.present.filter((p) => !p.me).length;
    const option = new Option(`${q.name} — ${q.open ? `${others} present` : "closed"}`, `queue:${q.slug}`);
    option.disabled = !q.open || others === 0;
    (groups[q.kind] || groups.shared).append(option);
  }
  for (const g of [people, groups.local, groups.shared]) if (g.children.length) to.append(g);
  const count = data.librarians.filter((x) => !x.me).length;
  $("#transfer-who").textContent = count ? `${count} other librarian${count > 1 ? "s" : ""} present.`
    : "Nobody else is present: a transfer would be refused.";
}

async function openRefer(view) {
  const dialog = $("#dlg-refer");
  const to = $("#refer-to");
  const home = view.info.home_library;
  to.replaceChildren(new Option(home ? home.name : "The consortium (no home library)", home ? home.slug : ""));
  $("#refer-note").value = "";
  dialog.returnValue = "";
  // Set before anything is awaited: a quick librarian may confirm before the library list arrives.
  dialog.onclose = () => {
    dialog.onclose = null; // do not keep the chat's panel alive after it closes
    if (dialog.returnValue !== "ok") return;
    const frame = { type: "refer", chat: view.id, note: $("#refer-note").value };
    if (to.value) frame.to = { library: to.value };
    sendSoon(frame, "referral");
  };
  dialog.showModal();
  try {
    const data = await getJSON("/staff/api/presence");
    for (const lib of data.libraries) if (!home || lib.slug !== home.slug) to.add(new Option(lib.name, lib.slug));
  } catch (e) {
    /* the home library alone is still a choice */
  }
}

function openEnd(view) {
  const dialog = $("#dlg-end");
  const c = view.classification || {};
  $("#end-subjects").value = (c.subjects || []).join(", ");
  for (const r of dialog.querySelectorAll('input[name="end-read"]')) r.checked = String(c.read_scale) === r.value;
  $("#end-outcome").value = c.outcome || (view.referred ? "referred" : view.patronLeft ? "patron_left" : "answered");
  $("#end-ok").textContent = view.state === "active" ? "End chat" : "Save and close";
  $("#dlg-end-title").textContent = view.state === "active" ? "End and classify" : "Classify this chat";
  $("#end-error").textContent = "";
  dialog.returnValue = "";
  dialog.showModal();
  dialog.onclose = async () => {
    dialog.onclose = null; // do not keep the chat's panel alive after it closes
    if (dialog.returnValue !== "ok") return;
    const checked = dialog.querySelector('input[name="end-read"]:checked');
    const data = { subjects: $("#end-subjects").value, read_scale: checked ? Number(checked.value) : null,
      outcome: $("#end-outcome").value };
    if (view.state === "active") await sendSoon({ type: "end", chat: view.id }, "end of the chat");
    try {
      const saved = await postJSON(`/staff/api/chats/${encodeURIComponent(view.id)}/classify`, data);
      view.classification = saved;
      if (view.state !== "active") closeChat(view.id);
      else view.closeWhenEnded = true;
    } catch (e) {
      notice(`The classification was not saved: ${e.message}`, "bad");
    }
  };
}

// For the browser tests and the soak script: the socket and the state, read-only in spirit.
window.vrConsole = { socket, chats, offers, get presence() { return presence; } };
updateCounts();
renderOffers();
socket.start();
