// Screen and page sharing, the librarian's side (docs/console.md, "Sharing a screen"; docs/protocol.md,
// issue 19). Every share starts with the patron's consent; the picture goes peer to peer (WebRTC) and the
// server carries only the signalling. The side with the picture makes the offer: the librarian for "show",
// the patron for "see". A share that has not connected after the configured time (12 s) ends on both
// sides, and the librarian is told to ask for a screenshot (the chat's existing upload).
//
// Shares live as long as this socket: after a reconnect the server has ended them (hello resets them here).

import { socket } from "./connection.js";
import { $, chats, notice } from "./page.js";
import { t } from "./text.js";

const shares = new Map(); // share id -> {view, kind, ice, pc, stream, box, timer, started}
const asked = new Map(); // `${chat} ${kind}` -> the captured stream for "show", until share_requested

let pendingAsks = 0; // share_request frames sent and not yet answered (share_requested or an error)

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function button(text, cls, onClick) {
  const b = el("button", cls, text);
  b.type = "button";
  b.addEventListener("click", onClick);
  return b;
}

function area(view) {
  return $(".share-area", view.panel);
}

// A line in the chat's share area, announced (role=status, or alert for what needs acting on).
function say(view, text, { alert = false, screenshot = false } = {}) {
  const box = el("div", "share-note");
  box.setAttribute("role", alert ? "alert" : "status");
  box.append(el("p", "", text));
  if (screenshot) box.append(button(t("Attach a screenshot instead…"), "", () => $(".attach-input", view.panel).click()));
  box.append(button(t("Dismiss"), "", () => box.remove()));
  area(view).querySelector(".share-note")?.remove();
  area(view).append(box);
}

// --- asking ------------------------------------------------------------------------------------------

export async function shareShow(view) {
  const md = navigator.mediaDevices;
  if (!md || !md.getDisplayMedia || !window.RTCPeerConnection) {
    say(view, t("This browser cannot share a screen."), { alert: true });
    return;
  }
  let stream;
  try {
    stream = await md.getDisplayMedia({ video: true, audio: false }); // the browser's own picker
  } catch (e) {
    return; // the librarian cancelled the picker
  }
  asked.set(`${view.id} show`, stream);
  pendingAsks += 1;
  if (!socket.send({ type: "share_request", chat: view.id, kind: "show" })) {
    pendingAsks -= 1;
    asked.delete(`${view.id} show`);
    stream.getTracks().forEach((track) => track.stop());
    say(view, t("Not connected: try again when the connection is back."), { alert: true });
  }
}

export function shareAsk(view, kind) {
  pendingAsks += 1;
  if (!socket.send({ type: "share_request", chat: view.id, kind })) {
    pendingAsks -= 1;
    say(view, t("Not connected: try again when the connection is back."), { alert: true });
  }
}

export function pagePush(view, url, title) {
  let u;
  try {
    u = new URL(url);
  } catch (e) {
    return t("Enter a full address, starting with https://");
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return t("Only http and https pages can be sent.");
  if (!socket.send({ type: "page_push", chat: view.id, url: u.href, title: title || u.href })) {
    return t("Not connected: try again when the connection is back.");
  }
  say(view, t("Page sent: the patron sees a card with “{title}” and opens it with a click.", { title: title || u.href }));
  return "";
}

// --- while it lasts -----------------------------------------------------------------------------------

function showBox(sh, text) {
  sh.box?.remove();
  const box = el("div", "share-box");
  box.dataset.kind = sh.kind;
  box.dataset.share = String(sh.id);
  const status = el("p", "share-status", text);
  status.setAttribute("role", "status");
  box.append(status);
  sh.box = box;
  sh.status = status;
  area(sh.view).querySelector(".share-note")?.remove(); // an earlier share's end is old news now
  area(sh.view).append(box);
  box.scrollIntoView?.({ block: "nearest" });
  return box;
}

function waitingBox(sh) {
  const box = showBox(sh, { show: t("Waiting for the patron to accept sharing your screen…"),
    see: t("Waiting for the patron to accept sharing the patron's screen…"),
    page: t("Waiting for the patron to accept sharing the patron's page…") }[sh.kind]);
  box.append(button(t("Cancel"), "", () => stop(sh.id)));
}

function liveBox(sh) {
  const text = { show: t("Connecting: the patron will see your screen…"), see: t("Connecting to the patron's screen…"),
    page: t("The patron agreed: their page shows here as they move around the site.") }[sh.kind];
  const box = showBox(sh, text);
  if (sh.kind === "see") {
    const video = el("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute("aria-label", t("The patron's screen"));
    sh.video = video;
    box.append(video);
    const big = button(t("Enlarge"), "", () => {
      const on = !box.classList.contains("big");
      box.classList.toggle("big", on);
      big.textContent = on ? t("Make smaller") : t("Enlarge");
      big.setAttribute("aria-pressed", String(on));
    });
    big.setAttribute("aria-pressed", "false");
    box.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && box.classList.contains("big")) {
        e.preventDefault();
        big.click();
      }
    });
    box.append(big);
  }
  if (sh.kind === "page") {
    sh.page = el("p", "share-page");
    box.append(sh.page);
  }
  box.append(button(sh.kind === "show" ? t("Stop showing") : t("Stop"), "danger", () => stop(sh.id)));
}

function connect(sh) {
  const ice = sh.ice || {};
  const pc = new RTCPeerConnection({ iceServers: ice.iceServers || [], iceTransportPolicy: ice.iceTransportPolicy || "all" });
  sh.pc = pc;
  const pending = [];
  let flush = null;
  pc.onicecandidate = (e) => {
    if (!e.candidate) return;
    pending.push(e.candidate.toJSON());
    // Batched: a browser gathers a dozen candidates at once, and the socket meters frames.
    flush = flush || setTimeout(() => {
      flush = null;
      socket.send({ type: "share_ice", share: sh.id, candidates: pending.splice(0, 50) });
    }, 100);
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") {
      clearTimeout(sh.timer);
      sh.status.textContent = sh.kind === "show" ? t("The patron sees your screen.") : t("You see the patron's screen.");
    } else if (pc.connectionState === "failed") {
      fail(sh.id);
    }
  };
  if (sh.kind === "show") {
    sh.stream.getTracks().forEach((track) => pc.addTrack(track, sh.stream));
    sh.stream.getVideoTracks()[0].addEventListener("ended", () => stop(sh.id)); // the browser's own Stop
    pc.createOffer().then((o) => pc.setLocalDescription(o))
      .then(() => socket.send({ type: "share_offer", share: sh.id, sdp: pc.localDescription.sdp }));
  } else {
    pc.ontrack = (e) => {
      if (sh.video) sh.video.srcObject = e.streams[0] || new MediaStream([e.track]);
    };
  }
  sh.timer = setTimeout(() => {
    if (pc.connectionState !== "connected") fail(sh.id);
  }, 1000 * (ice.connect_timeout || 12));
}

// Candidates that come before the other side's description wait for it (the browser refuses them).
function described(sh) {
  for (const c of sh.early || []) sh.pc.addIceCandidate(c).catch(() => {});
  sh.early = null;
}

// --- the end ------------------------------------------------------------------------------------------

function drop(id) {
  const sh = shares.get(id);
  if (!sh) return null;
  shares.delete(id);
  clearTimeout(sh.timer);
  sh.pc?.close();
  sh.stream?.getTracks().forEach((track) => track.stop());
  sh.box?.remove();
  return sh;
}

function stop(id) {
  const sh = drop(id);
  if (!sh) return;
  socket.send({ type: "share_end", chat: sh.view.id, share: id });
  say(sh.view, sh.started ? t("Sharing stopped.") : t("Request cancelled."));
}

function fail(id) {
  const sh = drop(id);
  if (!sh) return;
  socket.send({ type: "share_end", chat: sh.view.id, share: id, reason: "failed" });
  say(sh.view, t("The screen share could not connect (a network on one side does not allow it). The patron was told and offered to send a screenshot; you can attach one too."), { alert: true, screenshot: true });
}

function ended(frame) {
  const sh = shares.get(frame.share);
  if (!sh) return;
  if (frame.reason === "failed") {
    fail(frame.share);
    return;
  }
  drop(frame.share);
  const text = {
    refused: { show: t("The patron said no to sharing your screen."), see: t("The patron said no to sharing the patron's screen."),
      page: t("The patron said no to sharing the patron's page.") }[sh.kind],
    unsupported: t("The patron's browser cannot share a screen (most phones and tablets cannot): ask for a screenshot."),
    disconnected: t("Sharing ended: the connection dropped."),
    chat_ended: t("Sharing ended with the chat."),
  }[frame.reason] || (frame.by === "patron" ? t("The patron stopped sharing.") : t("Sharing stopped."));
  say(sh.view, text, { alert: frame.reason === "refused" || frame.reason === "unsupported",
    screenshot: frame.reason === "unsupported" });
}

// --- frames -------------------------------------------------------------------------------------------

export function shareFrame(frame) {
  const view = chats.get(frame.chat);
  const sh = shares.get(frame.share);
  switch (frame.type) {
    case "share_requested": {
      pendingAsks = Math.max(0, pendingAsks - 1);
      if (!view) return;
      const key = `${frame.chat} ${frame.kind}`;
      const s = { id: frame.share, view, kind: frame.kind, ice: frame.ice, stream: asked.get(key), started: false };
      asked.delete(key);
      shares.set(frame.share, s);
      waitingBox(s);
      break;
    }
    case "share_started":
      if (!sh || sh.started) return;
      sh.started = true;
      liveBox(sh);
      if (sh.kind !== "page") connect(sh);
      break;
    case "share_offer":
      if (!sh?.pc) return;
      sh.pc.setRemoteDescription({ type: "offer", sdp: frame.sdp })
        .then(() => described(sh))
        .then(() => sh.pc.createAnswer()).then((a) => sh.pc.setLocalDescription(a))
        .then(() => socket.send({ type: "share_answer", share: sh.id, sdp: sh.pc.localDescription.sdp }))
        .catch(() => fail(sh.id));
      break;
    case "share_answer":
      sh?.pc?.setRemoteDescription({ type: "answer", sdp: frame.sdp }).then(() => described(sh), () => fail(sh.id));
      break;
    case "share_ice":
      if (!sh?.pc) return;
      if (!sh.pc.remoteDescription) sh.early = [...(sh.early || []), ...(frame.candidates || [])];
      else for (const c of frame.candidates || []) sh.pc.addIceCandidate(c).catch(() => {});
      break;
    case "share_page": {
      if (!sh?.page) return;
      // Text only: the address is a link the librarian may follow, the title is shown as written.
      const a = el("a", "", frame.title || frame.url);
      a.href = /^https?:/i.test(frame.url) ? frame.url : "#";
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      sh.page.replaceChildren(t("The patron is on:") + " ", a, el("span", "url", ` ${frame.url}`));
      break;
    }
    case "share_ended":
      ended(frame);
      break;
    default:
      break;
  }
}

// After a reconnect (hello): the server ended this socket's shares when the old one closed.
export function sharesReset() {
  for (const id of [...shares.keys()]) {
    const sh = drop(id);
    if (sh) say(sh.view, t("Sharing ended: the connection dropped."));
  }
}

// A chat that left this librarian (ended, transferred) takes its shares with it.
export function sharesOfChatEnd(chatId) {
  for (const [id, sh] of [...shares]) if (sh.view.id === chatId) drop(id);
}

// The server refused a share_request (answered with an error, not share_requested): a screen picked for
// "show" is let go at once, so the browser's capture indicator does not stay on for nothing.
// True when a request was waiting for its answer (so the error was its refusal).
export function shareAskRefused() {
  if (!pendingAsks) return false;
  pendingAsks = 0;
  for (const stream of asked.values()) stream?.getTracks().forEach((track) => track.stop());
  asked.clear();
  return true;
}
