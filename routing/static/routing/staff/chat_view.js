// One held chat: its tab and panel, the log kept by sequence number, the composer with its outbox,
// files, the home library's page beside it, and what happened to it while the console was away.
//
// Every chat is resumed with `join` from the last sequence number this page has, and messages are
// kept by sequence number, so a reconnect can neither lose nor double a line. Messages the
// librarian sends wait in an outbox until the server echoes them (matched by client_id) and are
// sent again after a reconnect; the server stores each client_id once.

import { AnswersPanel } from "../../knowledge/console_answers.js";
import { CannedPicker } from "./canned.js";
import { socket } from "./connection.js";
import { openBlock, openEnd, openRefer, openTransfer } from "./dialogs.js";
import { $, CSRF, chats, getJSON, notice, updateTitle } from "./page.js";
import { pagePush, shareAsk, shareShow } from "./share.js";
import { chooseTab, closeChat, select, selected, tabKeys, updateCounts } from "./tabs.js";
import { appendText, clockTime, t } from "./text.js";

const TYPING_SHOW_MS = 5000;
const TYPING_SEND_EVERY_MS = 3000;

export class ChatView {
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
    this.textarea.setAttribute("aria-label", t("Message to the patron"));
    $(".canned", this.panel).setAttribute("aria-label", t("Insert a canned response"));
    // Before wire(): its keys (Enter inserts) come before the composer's (Enter sends).
    this.picker = new CannedPicker(this.textarea, id, () => this.info.canned);
    this.answers = new AnswersPanel(id, $(".answers", this.panel), this.textarea);
    this.tab.addEventListener("click", () => chooseTab(id));
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
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing && !e.defaultPrevented) {
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
        ? t("Internal note: staff see it, the patron never does.")
        : t("Type a reply. Enter sends, Shift+Enter starts a new line, / at the start finds a canned response.");
    });
    $(".canned", this.panel).addEventListener("change", (e) => {
      const chosen = (this.info.canned || []).find((c) => c.key === e.target.value);
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
    $(".do-block", this.panel).addEventListener("click", () => openBlock(this));
    $(".do-block-after", this.panel).addEventListener("click", () => openBlock(this));
    $(".do-classify", this.panel).addEventListener("click", () => openEnd(this));
    $(".do-close", this.panel).addEventListener("click", () => closeChat(this.id));
    // The way home: one click, a transfer to the home library's queue with the note (never automatic).
    $(".do-handback", this.panel).addEventListener("click", () => {
      socket.send({ type: "hand_back", chat: this.id, note: $(".handback-note", this.panel).value });
      this.showHandback(false);
    });
    $(".do-show", this.panel).addEventListener("click", () => shareShow(this));
    $(".do-see", this.panel).addEventListener("click", () => shareAsk(this, "see"));
    $(".do-page", this.panel).addEventListener("click", () => shareAsk(this, "page"));
    const push = $(".push-form", this.panel);
    $(".do-push", this.panel).addEventListener("click", (e) => {
      push.hidden = !push.hidden;
      e.target.setAttribute("aria-expanded", String(!push.hidden));
      if (!push.hidden) $(".push-url", push).focus();
    });
    push.addEventListener("submit", (e) => {
      e.preventDefault();
      const problem = pagePush(this, $(".push-url", push).value.trim(), $(".push-title", push).value.trim());
      $(".push-error", push).textContent = problem;
      if (!problem) {
        push.reset();
        push.hidden = true;
        $(".do-push", this.panel).setAttribute("aria-expanded", "false");
      }
    });
  }

  // A live `handback` frame. It is newer than the answer to a chat-info fetch started before it
  // (loadInfo), which must not hide the box again: under load that answer, read before a home
  // librarian became available, came after the frame (found by tests/browser, in CI).
  handbackFrame(available) {
    this.handbackLive = { available, count: (this.handbackLive ? this.handbackLive.count : 0) + 1 };
    this.showHandback(available);
  }

  // "A librarian of <home> is available: hand back?" while the home library can take the chat.
  showHandback(available) {
    const box = $(".handback", this.panel);
    const home = this.info.home_library;
    box.hidden = !(available && home && this.state === "active");
    if (!box.hidden) $(".handback-text", box).textContent = `A librarian of ${home.name} is available: hand back?`;
  }

  // A returning patron's earlier chats (only those this librarian may read), linked to their transcripts.
  renderEarlier() {
    const box = $(".earlier", this.panel);
    const earlier = this.info.earlier || [];
    box.hidden = earlier.length === 0;
    if (box.hidden) return;
    $(".earlier-title", box).textContent = earlier.length === 1 ? t("Returning patron: 1 earlier chat")
      : t("Returning patron: {n} earlier chats", { n: earlier.length });
    const list = $(".earlier-list", box);
    list.replaceChildren();
    for (const c of earlier) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = c.url;
      a.target = "_blank";
      a.rel = "noopener";
      a.textContent = `${new Date(c.arrived_at).toLocaleDateString()}: ${c.question}`;
      li.append(a);
      if (c.answered_by) li.append(` (${c.answered_by})`);
      list.append(li);
    }
  }

  isInternal() {
    return $(".internal", this.panel).checked;
  }

  render() {
    const sms = this.info.channel === "sms";
    const given = this.info.patron && this.info.patron.name;
    // A texting patron is known by the last four digits of the phone only (docs/sms.md).
    const name = sms ? (given ? t("Text from {name}", { name: given }) : t("Text from a phone")) : given || t("Patron");
    const home = this.info.home_library;
    $(".label", this.tab).textContent = home ? `${name} · ${home.name}` : name;
    $(".patron-name", this.panel).textContent = name;
    this.panel.dataset.channel = sms ? "sms" : "web";
    $(".channel", this.panel).hidden = !sms;
    $(".sms-note", this.panel).hidden = !sms;
    $(".composer textarea", this.panel).maxLength = sms ? 1600 : 4000;
    $(".home", this.panel).textContent = home ? t("{name} patron", { name: home.name }) : t("No home library");
    const note = $(".transfer-note", this.panel);
    note.hidden = !this.info.transfer_note;
    note.textContent = this.info.transfer_note ? t("Transfer note (staff only): {note}", { note: this.info.transfer_note }) : "";
    const active = this.state === "active";
    this.tab.dataset.ended = active ? "false" : "true";
    $(".chat-state", this.panel).textContent = active ? (this.patronLeft ? t("The patron left the chat") : "")
      : this.endedText();
    for (const el of this.panel.querySelectorAll(".composer textarea, .composer button, .composer select, .composer input, .chat-actions button")) {
      el.disabled = !active;
    }
    $(".chat-actions", this.panel).hidden = !active;
    // Sharing needs the patron in a browser: not in a text conversation (docs/sms.md).
    $(".share-actions", this.panel).hidden = !active || sms;
    for (const b of $(".share-actions", this.panel).querySelectorAll("button")) b.disabled = !active;
    if (!active) $(".push-form", this.panel).hidden = true;
    $(".composer", this.panel).hidden = !active;
    const box = $(".ended-box", this.panel);
    box.hidden = active;
    $(".ended-text", box).textContent = this.endedText();
    $(".do-classify", box).hidden = ["transferred", "lost", "taken over"].includes(this.state);
    // A patron who ended the chat themselves can still be blocked by its librarian, once.
    $(".do-block-after", box).hidden = this.state !== "ended" || !!this.blocked;
    const canned = $(".canned", this.panel);
    const keys = (this.info.canned || []).map((c) => c.key).join(" ");
    if (canned.dataset.keys !== keys) {
      canned.dataset.keys = keys;
      canned.length = 1;
      for (const c of this.info.canned || []) {
        const option = new Option(`${c.title} (${c.language === "es" ? "Español" : "English"})`, c.key);
        option.lang = c.language;
        canned.add(option);
      }
    }
    const unread = $(".unread", this.tab);
    unread.dataset.n = String(this.unread);
    $(".n", unread).textContent = String(this.unread);
  }

  endedText() {
    return {
      ended: t("This chat has ended."),
      transferred: t("You transferred this chat."),
      lost: t("This chat went back to the queue while you were disconnected."),
      gone: t("This chat is no longer yours."),
      "taken over": t("A mentor took this chat over; it continues with them."),
    }[this.state] || "";
  }

  async loadInfo() {
    const framesBefore = this.handbackLive ? this.handbackLive.count : 0;
    try {
      const info = await getJSON(`/staff/api/chats/${encodeURIComponent(this.id)}`);
      this.info = { ...this.info, ...info, transfer_note: this.info.transfer_note || info.transfer_note };
      if (info.classification) {
        this.classification = info.classification;
      }
      this.render();
      this.renderEarlier();
      const live = this.handbackLive;
      this.showHandback(live && live.count !== framesBefore ? live.available : !!info.handback);
      this.loadLibrary();
      this.answers.refresh();
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
      p.textContent = t("No home library: the patron did not name one and no ZIP code matched.");
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
      aside.textContent = t("The home library's page could not be loaded.");
    }
  }

  join() {
    socket.send({ type: "join", chat: this.id, after: this.maxSeq });
    // Whatever did not reach the server before the connection dropped goes again; the server
    // stores a client_id once and echoes the stored message (marked `resent` when it sent it already).
    for (const { frame } of this.pending.values()) socket.send(frame);
  }

  showDelivery(frame) {
    const li = this.lines.get(frame.seq);
    if (!li) {
      this.deliveries = this.deliveries || new Map();
      this.deliveries.set(frame.seq, frame); // the line comes after its delivery (a resume): shown then
      return;
    }
    li.dataset.delivery = frame.status;
    let el = li.querySelector(".delivery");
    if (!el) {
      el = document.createElement("span");
      el.className = "delivery";
      li.append(el);
    }
    el.textContent = deliveryText(frame);
  }

  acked(clientId) {
    const entry = clientId && this.pending.get(clientId);
    if (!entry) return;
    entry.li.remove(); // the stored line itself came already, in its place by seq
    this.pending.delete(clientId);
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
    const delivery = this.deliveries && this.deliveries.get(frame.seq);
    if (delivery) {
      this.deliveries.delete(frame.seq);
      this.showDelivery(delivery);
    }
    if (nearBottom || frame.sender === "librarian") this.log.scrollTop = this.log.scrollHeight;
    if (frame.sender === "patron") {
      this.showTyping(false);
      this.answers.refresh();
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
      if (!r.ok) throw new Error((answer.error && answer.error.detail) || t("failed ({status})", { status: r.status }));
      this.addMessage(answer);
    } catch (e) {
      notice(t("{name} was not sent: {detail}", { name: file.name, detail: e.message }), "warn");
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
    why.textContent = t("Not sent: {detail}", { detail });
    entry.li.append(why);
  }

  showTyping(on) {
    const el = $(".typing", this.panel);
    clearTimeout(this.typingTimer);
    const typist = this.info.patron && this.info.patron.name;
    el.textContent = !on ? "" : typist ? t("{name} is typing…", { name: typist }) : t("The patron is typing…");
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

function deliveryText(frame) {
  return frame.status === "delivered" ? t("sent as a text")
    : frame.detail ? t("not delivered: {detail}", { detail: frame.detail }) : t("not delivered");
}

export function messageElement(frame, info) {
  const li = document.createElement("li");
  li.className = "msg";
  li.dataset.sender = frame.sender;
  if (frame.internal) li.dataset.internal = "true";
  if (frame.whisper) li.dataset.whisper = "true"; // a mentor's line to the chat's librarian only
  const who = document.createElement("span");
  who.className = "who";
  const name = frame.sender === "patron" ? (frame.name || (info.patron && info.patron.name) || t("Patron"))
    : frame.sender === "system" ? "" : (frame.name || t("Librarian"));
  const label = frame.whisper ? t("Whisper (only you see it)") : frame.internal ? t("Internal note") : "";
  who.textContent = [label, name, clockTime(frame.at)].filter(Boolean).join(" · ");
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

export function openChat(id, info) {
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

// --- filling in what a reconnect cannot resume -----------------------------------------------------

export async function settleUnheld(view) {
  // The chat ended, was transferred or went back to the queue while we were away: fetch the lines
  // we missed from the transcript (staff who took part may read it), then say what happened.
  try {
    // A long transcript comes in pages: follow `next` until there is none.
    let url = `/api/v1/chats/${encodeURIComponent(view.id)}/transcript`;
    let transcript;
    while (url) {
      transcript = await getJSON(url);
      for (const m of transcript.messages || []) view.addMessage({ ...m, chat: view.id });
      url = transcript.next || null;
    }
    view.setState(transcript.state === "ended" || transcript.state === "abandoned" ? "ended" : "lost");
  } catch (e) {
    view.setState("gone");
  }
}
