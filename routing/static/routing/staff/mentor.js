// One chat opened read-only by a mentor, or by a colleague named in it (docs/console.md, "Mentors"):
// its messages as they come, by sequence number (a reconnect resumes with `watch {after}` and
// neither loses nor doubles a line), its trace, the home library's page; whisper, join, take over.

import { StaffSocket } from "./socket.js";
import { appendText, clockTime, t } from "./text.js";

const $ = (sel) => document.querySelector(sel);
const CHAT = document.body.dataset.chat;
const lines = new Map(); // seq -> li
let maxSeq = 0;
let joined = false;
let info = {};

function notice(text, kind = "info") {
  const el = document.createElement("div");
  el.className = `notice ${kind}`;
  el.setAttribute("role", "status");
  const p = document.createElement("p");
  p.textContent = text;
  el.append(p);
  $("#notices").append(el);
  setTimeout(() => el.remove(), 12000);
}

function addMessage(frame) {
  if (lines.has(frame.seq)) return;
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.sender = frame.sender;
  li.dataset.seq = String(frame.seq);
  if (frame.internal) li.dataset.internal = "true";
  if (frame.whisper) li.dataset.whisper = "true";
  const who = document.createElement("span");
  who.className = "who";
  const label = frame.whisper ? t("Whisper") : frame.internal ? t("Internal note") : "";
  const name = frame.sender === "system" ? "" : frame.name || (frame.sender === "patron" ? t("Patron") : t("Librarian"));
  who.textContent = [label, name, clockTime(frame.at)].filter(Boolean).join(" · ");
  const body = document.createElement("span");
  body.className = "body";
  appendText(body, frame.body || "");
  li.append(who, body);
  const log = $("#w-log");
  const after = [...lines.keys()].filter((s) => s > frame.seq).sort((a, b) => a - b)[0];
  log.insertBefore(li, after !== undefined ? lines.get(after) : null);
  lines.set(frame.seq, li);
  maxSeq = Math.max(maxSeq, frame.seq);
  log.scrollTop = log.scrollHeight;
}

// Names for the stored codes of a chat's state and of its trace's steps, in the reader's language; a
// code without one (a step added since) is shown as it is stored.
const STATES = {
  queued: t("Waiting"),
  active: t("Being answered"),
  ended: t("Ended"),
  unstaffed: t("Nobody to answer"),
  abandoned: t("Patron left before an answer"),
};
const STEPS = {
  created: t("started"),
  offered: t("offered"),
  escalated: t("moved to the next step"),
  accepted: t("accepted"),
  declined: t("declined"),
  abandoned: t("patron left"),
  unstaffed: t("nobody to answer"),
  requeued: t("back in the queue"),
  transferred: t("transferred"),
  ended: t("ended"),
  handback_offered: t("hand-back offered"),
  handed_back: t("handed back"),
  ticket: t("referred to a follow-up"),
  classified: t("classified"),
  blocked: t("patron blocked"),
  deleted: t("deleted"),
  self_served: t("answered by a published answer"),
  share_requested: t("share asked"),
  share_started: t("share started"),
  share_refused: t("share refused"),
  page_pushed: t("page sent"),
  mentor_joined: t("mentor joined"),
  taken_over: t("taken over"),
  takeover_asked: t("take-over asked"),
  takeover_declined: t("take-over declined"),
  watched: t("watched"),
  whispered: t("whispered"),
};
const stateName = (state) => STATES[state] || state;

function addTrace(event) {
  const li = document.createElement("li");
  const who = event.data && (event.data.name || event.data.username || event.data.library || event.data.reason);
  const step = STEPS[event.kind] || event.kind.replaceAll("_", " ");
  li.textContent = [clockTime(event.at), step, who].filter(Boolean).join(" · ");
  $("#w-trace").append(li);
}

function showInfo(frame) {
  info = frame;
  $("#w-patron").textContent = (frame.patron && frame.patron.name) || t("Patron");
  $("#w-home").textContent = frame.home_library ? frame.home_library.name : t("No home library");
  $("#w-state").textContent = stateName(frame.state);
  const who = frame.librarian ? t("Answered by {name} ({library})", { name: frame.librarian.name, library: frame.librarian.library.name })
    : t("Waiting for a librarian");
  $("#w-librarian").textContent = frame.second_librarian
    ? t("{who}, with {name}", { who, name: frame.second_librarian.name }) : who;
  $("#w-actions").hidden = !(frame.may && frame.may.join);
  if (frame.you_joined) showJoined();
  $("#w-trace").replaceChildren();
  for (const event of frame.trace || []) addTrace(event);
  loadLibrary(frame.policy_url);
}

function showJoined() {
  joined = true;
  $("#w-join").disabled = true;
  $("#w-whisper label").textContent = t("You joined the chat: what you write here goes to the patron");
  $("#w-whisper").dataset.internal = "false";
  $("#w-whisper button[type=submit]").textContent = t("Send to the chat");
}

async function loadLibrary(url) {
  const aside = $("#w-library");
  if (!url || aside.dataset.loaded === url) return;
  try {
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) throw new Error(String(r.status));
    aside.innerHTML = await r.text(); // our own server's fragment, rendered safe there (libraries.policy)
    aside.dataset.loaded = url;
  } catch (e) {
    aside.textContent = t("The home library's page could not be loaded.");
  }
}

function handle(frame) {
  if (frame.chat && frame.chat !== CHAT && frame.type !== "hello") return;
  switch (frame.type) {
    case "hello":
      socket.send({ type: "watch", chat: CHAT, after: maxSeq });
      break;
    case "watching":
      showInfo(frame);
      break;
    case "message":
      addMessage(frame);
      break;
    case "trace":
      addTrace(frame);
      break;
    case "state":
      $("#w-state").textContent = stateName(frame.state);
      break;
    case "second_joined":
      showJoined();
      notice(t("You joined the chat: the patron sees your lines."));
      break;
    case "assigned":
      notice(t("The chat is yours now: it is in your console."));
      break;
    case "takeover_declined":
      notice(frame.by ? t("{name} keeps the chat.", { name: frame.by.name }) : t("The librarian keeps the chat."), "warn");
      break;
    case "takeover_failed":
      notice(t("Take-over refused: {detail}", { detail: frame.detail }), "warn");
      break;
    case "error":
      notice(t("Refused: {detail}", { detail: frame.detail || frame.code }), "warn");
      break;
    default:
      break;
  }
}

const socket = new StaffSocket(document.body.dataset.ws, {
  onFrame: handle,
  onState: (state) => {
    const el = $("#conn");
    el.dataset.state = state;
    el.textContent = { connected: t("Connected"), connecting: t("Connecting…"), reconnecting: t("Reconnecting…") }[state]
      || state;
  },
});

function clientId() {
  return `w${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

$("#w-whisper").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("#w-text").value;
  if (!text.trim()) return;
  // A mentor who joined writes to the chat; everyone else whispers to its librarian.
  const frame = joined ? { type: "message", chat: CHAT, body: text, client_id: clientId() }
    : { type: "whisper", chat: CHAT, body: text, client_id: clientId() };
  if (!socket.send(frame)) {
    notice(t("Not connected: not sent."), "warn");
    return;
  }
  $("#w-text").value = "";
});
$("#w-join").addEventListener("click", () => socket.send({ type: "mentor_join", chat: CHAT }));
// Two steps: the first click says what will happen, the second does it (a coordinator's is at once).
$("#w-take").addEventListener("click", (e) => {
  const button = e.currentTarget;
  if (button.dataset.armed !== "true") {
    button.dataset.armed = "true";
    button.textContent = t("Confirm: take this chat over");
    setTimeout(() => {
      button.dataset.armed = "false";
      button.textContent = t("Take over…");
    }, 8000);
    return;
  }
  button.dataset.armed = "false";
  button.textContent = t("Take over…");
  socket.send({ type: "take_over", chat: CHAT });
  notice(info.librarian ? t("Asked {name} to hand the chat over (a coordinator takes it at once).", { name: info.librarian.name })
    : t("Asked."));
});

window.vrWatch = { socket, lines };
socket.start();
