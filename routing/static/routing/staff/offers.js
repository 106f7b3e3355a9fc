// Waiting chats: the offers this librarian may accept, oldest first, with their waits and countdowns,
// and the notifications that announce a new one. The server's hello is the truth about which offers
// stand; `offer`, `offer_withdrawn`, `accept_failed` and `assigned` change them between hellos.

import { onConnectionState, socket } from "./connection.js";
import { Notifier } from "./notify.js";
import { $, ME, chats, notice, offers, serverNow, updateTitle } from "./page.js";
import { formatDuration, t } from "./text.js";

const accepting = new Map(); // chat id -> when Accept was clicked

// --- notifications --------------------------------------------------------------------------------

const notifier = new Notifier();
$("#opt-sound").checked = notifier.sound;
$("#opt-desktop").checked = notifier.desktop;
$("#opt-sound").addEventListener("change", (e) => notifier.setSound(e.target.checked));
$("#opt-desktop").addEventListener("change", async (e) => {
  e.target.checked = await notifier.setDesktop(e.target.checked);
  if (!e.target.checked && "Notification" in window && Notification.permission === "denied") {
    notice(t("The browser blocks notifications for this site; allow them in its site settings."), "warn");
  }
});

// --- waiting chats ------------------------------------------------------------------------------

function offerKind(frame) {
  if (frame.transfer_note || frame.step === "transfer") return "transfer";
  // A returning patron offered first to the librarian who last helped them (docs/routing.md, "Head start").
  if (frame.step === "returning") return "returning";
  const home = frame.home_library && frame.home_library.slug;
  if (home && home === ME.library) return "local";
  if (home && frame.queue === ME.library) return "partner";
  return "consortium";
}

export function renderOffers() {
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

export function addOffer(frame, { quiet = false } = {}) {
  const existing = offers.get(frame.chat);
  const el = existing ? existing.el : $("#tpl-offer").content.firstElementChild.cloneNode(true);
  const kind = offerKind(frame);
  el.dataset.chat = frame.chat;
  el.dataset.kind = kind;
  el.dataset.mode = frame.mode;
  const badge = $(".badge", el);
  badge.dataset.kind = kind;
  badge.textContent = kind;
  $(".home", el).textContent = frame.home_library ? frame.home_library.name : t("No home library");
  $(".question", el).textContent = frame.question || "";
  const note = $(".transfer-note", el);
  note.hidden = !frame.transfer_note;
  note.textContent = frame.transfer_note ? t("Transfer note: {note}", { note: frame.transfer_note }) : "";
  const sms = frame.channel === "sms";
  $(".channel", el).hidden = !sms;
  el.dataset.channel = frame.channel || "web";
  const patronName = frame.patron && frame.patron.name;
  // A texting patron is known by the last four digits of the phone only (docs/sms.md).
  $(".patron", el).textContent = sms ? (patronName ? t("Text from {name}", { name: patronName }) : t("Text from a phone"))
    : patronName ? t("from {name}", { name: patronName }) : "";
  const accept = $(".accept", el);
  refreshAccept(frame.chat, el);
  accept.setAttribute("aria-label", frame.home_library ? t("Accept the chat from {name}", { name: frame.home_library.name })
    : t("Accept the chat from the consortium"));
  $(".decline", el).setAttribute("aria-label", t("Decline this chat"));
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
    notifier.show(t("A patron is waiting"), `${frame.home_library ? frame.home_library.name + ": " : ""}${frame.question}`);
  }
}

function refreshAccept(chatId, el) {
  const accept = $(".accept", el);
  accept.disabled = accepting.has(chatId) || socket.state !== "connected";
  accept.textContent = accepting.has(chatId) ? t("Accepting…") : t("Accept");
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
    notice(t("Not connected: wait for the connection to come back, then accept."), "warn");
    return;
  }
  accepting.set(chatId, Date.now());
  const entry = offers.get(chatId);
  if (entry) addOffer(entry.frame, { quiet: true });
}

function tickOffer({ frame, el }) {
  const waited = (serverNow() - Date.parse(frame.waiting_since)) / 1000;
  $(".wait", el).textContent = t("waiting {time}", { time: formatDuration(waited) });
  const countdown = $(".countdown", el);
  if (frame.mode === "direct" && frame.expires_at) {
    const left = (Date.parse(frame.expires_at) - serverNow()) / 1000;
    countdown.hidden = false;
    countdown.textContent = left > 0 ? t("accept within {time}", { time: formatDuration(left) }) : t("expiring…");
  } else {
    countdown.hidden = true;
  }
}

setInterval(() => {
  for (const entry of offers.values()) tickOffer(entry);
}, 1000);


// Accepting needs the server now: while the socket is down the buttons say so by being disabled.
onConnectionState(() => {
  for (const entry of offers.values()) refreshAccept(entry.frame.chat, entry.el);
});

// --- what the server says about offers -------------------------------------------------------------

const WITHDRAWN = {
  accepted: () => t("was taken by another librarian"),
  expired: () => t("expired before it was accepted"),
  abandoned: () => t("was abandoned: the patron left"),
  ended: () => t("ended: the patron left"),
  closed: () => t("can no longer be answered here"),
};

export function offersFromHello(frame) {
  const current = new Set((frame.offers || []).map((o) => o.chat));
  for (const id of [...offers.keys()]) if (!current.has(id)) removeOffer(id);
  for (const offer of frame.offers || []) addOffer(offer, { quiet: offers.has(offer.chat) });
}

export function offerWithdrawn(frame) {
  const gone = removeOffer(frame.chat);
  if (gone && WITHDRAWN[frame.reason] && !(frame.reason === "accepted" && chats.has(frame.chat))) {
    const what = WITHDRAWN[frame.reason]();
    notice(gone.home_library ? t("The chat from {name} {what}.", { name: gone.home_library.name, what })
      : t("The chat {what}.", { what }), frame.reason === "expired" ? "warn" : "info",
      { key: `offer-${frame.chat}` });
  }
}

// The chat is this librarian's now: the offer goes. Answers when Accept was clicked here (undefined
// when the chat came another way: a transfer to them, a hello after a reconnect).
export function offerAssigned(chatId) {
  const acceptedAt = accepting.get(chatId);
  removeOffer(chatId);
  return acceptedAt;
}

export function acceptFailed(frame) {
  accepting.delete(frame.chat);
  const entry = offers.get(frame.chat);
  const text = {
    taken: t("Another librarian took this chat first."),
    at_capacity: t("You already hold {capacity} chats: end one before accepting another.", { capacity: ME.capacity }),
    not_offered: t("That chat is no longer offered to you."),
    ended: t("The patron left before the chat was accepted."),
  }[frame.reason] || frame.detail || t("The chat could not be accepted.");
  notice(text, frame.reason === "at_capacity" ? "warn" : "info", { key: `offer-${frame.chat}` });
  if (frame.reason === "at_capacity" && entry) addOffer(entry.frame, { quiet: true });
  else removeOffer(frame.chat);
}
