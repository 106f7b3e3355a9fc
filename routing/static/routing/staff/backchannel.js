// The staff back-channel in the console (docs/console.md, "Mentors" and "Asking a colleague"):
//
//   - a colleague's `@name` in an internal note (`mentioned`): a notice with a link that opens the
//     chat read-only, where they may whisper; shown again at every hello until opened;
//   - a mentor asking to take a chat over (`takeover_asked`): hand it over or keep it;
//   - the consortium's staff room: lines kept by their room seq, so a reconnect neither loses nor
//     doubles one (the server sends those after `after`, then live ones, each once). Its members are
//     the staff on duty (available, or answering a chat): someone away reads it, read-only, with a
//     note. The server checks again at every line; a line it refuses goes back into the box.

import { socket } from "./connection.js";
import { $, notice } from "./page.js";
import { appendText, clockTime, t } from "./text.js";

const shownMentions = new Set();

export function showMention(frame) {
  if (shownMentions.has(frame.id)) return;
  shownMentions.add(frame.id);
  const who = (frame.by && frame.by.name) || t("A colleague");
  notice(t("{who} asked for you in a chat: “{excerpt}”", { who, excerpt: frame.excerpt }), "info", {
    sticky: true,
    key: `mention-${frame.id}`,
    action: {
      label: t("Open the chat"),
      run: (el) => {
        window.open(frame.url, "_blank", "noopener");
        el.remove();
      },
    },
  });
}

export function askTakeover(frame) {
  const who = (frame.by && frame.by.name) || t("A mentor");
  const el = notice(t("{who} (mentor) asks to take over one of your chats.", { who }), "warn", {
    sticky: true,
    key: `takeover-${frame.chat}`,
    action: {
      label: t("Hand it over"),
      run: (box) => {
        socket.send({ type: "takeover_answer", chat: frame.chat, consent: true });
        box.remove();
      },
    },
  });
  const keep = document.createElement("button");
  keep.type = "button";
  keep.textContent = t("Keep it");
  keep.addEventListener("click", () => {
    socket.send({ type: "takeover_answer", chat: frame.chat, consent: false });
    el.remove();
  });
  el.insertBefore(keep, el.lastElementChild);
}

// --- the staff room ---------------------------------------------------------------------------------

const room = { lines: new Map(), maxSeq: 0, pending: new Map() }; // pending: client_id -> text not yet stored

// On duty or not, as the server reads it (routing/staff_room.py `on_duty`): from the console's own
// presence and the chats it holds. Off duty, the room is read-only here, with the note saying why.
export function roomStanding(presence, heldChats) {
  const form = $("#room-form");
  if (!form) return;
  const onDuty = presence === "available" || heldChats > 0;
  $("#room-note").hidden = onDuty;
  $("#room-text").disabled = !onDuty;
  form.querySelector("button[type=submit]").disabled = !onDuty;
}

// An `error` answering a line of the room (its client_id): the text goes back into the box, unless
// something else was typed there since. True when the error was the room's.
export function roomRefused(frame) {
  const text = room.pending.get(frame.client_id);
  if (text === undefined) return false;
  room.pending.delete(frame.client_id);
  const box = $("#room-text");
  if (!box.value.trim()) box.value = text;
  notice(t("Not sent to the staff room: {detail}", { detail: frame.detail || frame.code }), "warn");
  return true;
}

export function roomJoin() {
  if ($("#room")) socket.send({ type: "room_join", after: room.maxSeq });
}

export function roomLine(frame) {
  if (frame.client_id) room.pending.delete(frame.client_id);
  const log = $("#room-log");
  if (!log || room.lines.has(frame.seq)) return;
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.sender = "librarian";
  li.dataset.internal = "true";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = [frame.name, frame.library, clockTime(frame.at)].filter(Boolean).join(" · ");
  const body = document.createElement("span");
  body.className = "body";
  appendText(body, frame.body || "");
  li.append(who, body);
  const after = [...room.lines.keys()].filter((s) => s > frame.seq).sort((a, b) => a - b)[0];
  log.insertBefore(li, after !== undefined ? room.lines.get(after) : null);
  room.lines.set(frame.seq, li);
  room.maxSeq = Math.max(room.maxSeq, frame.seq);
  log.scrollTop = log.scrollHeight;
  const count = $("#room-count");
  if (count && !$("#room").open) count.textContent = String(Number(count.textContent || 0) + 1);
}

function roomSend(e) {
  e.preventDefault();
  const box = $("#room-text");
  const text = box.value;
  if (!text.trim()) return;
  const clientId = `r${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  if (!socket.send({ type: "room_message", body: text, client_id: clientId })) {
    notice(t("Not connected: the line was not sent to the staff room."), "warn");
    return;
  }
  room.pending.set(clientId, text);
  box.value = "";
}

const roomForm = $("#room-form");
if (roomForm) {
  roomForm.addEventListener("submit", roomSend);
  $("#room").addEventListener("toggle", () => { $("#room-count").textContent = ""; });
}
