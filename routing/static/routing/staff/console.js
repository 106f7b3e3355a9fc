// The staff console: waiting chats, the librarian's chats in tabs, and the home library beside each.
// This module reads the server's frames and hands each to the part of the page it concerns:
//
//   page.js        who is signed in, the server's clock, the offers and chats, notices, HTTP, the title
//   connection.js  the socket (socket.js), the connection indicator, sending after a reconnect
//   presence.js    Available/Away, the end of the shift, idle auto-away (idle.js)
//   offers.js      waiting chats and their notifications (notify.js)
//   tabs.js        which held chat is shown, the counts
//   chat_view.js   one held chat: the log by sequence number, the outbox, files, the home library
//   dialogs.js     transfer, refer (follow-up ticket), end and classify
//   backchannel.js colleagues' mentions, a mentor's take-over, the staff room
//
// The socket is the only source of live state. The server's hello after every (re)connection is
// the truth about offers and held chats: offers it no longer names go, chats it holds for this
// librarian are resumed (chat_view.js `join`), and chats it does not are settled from the transcript.

import { openChat, settleUnheld } from "./chat_view.js";
import { askTakeover, roomJoin, roomLine, roomRefused, roomStanding, showMention } from "./backchannel.js";
import { handleFramesWith, socket } from "./connection.js";
import { acceptFailed, addOffer, offerAssigned, offersFromHello, offerWithdrawn, renderOffers } from "./offers.js";
import { chats, notice, offers } from "./page.js";
import { presence, presenceFromHello, setPresence, showShift } from "./presence.js";
import { shareAskRefused, shareFrame, sharesOfChatEnd, sharesReset } from "./share.js";
import { showAccepted, updateCounts } from "./tabs.js";
import { t } from "./text.js";

function handle(frame) {
  const view = frame.chat ? chats.get(frame.chat) : null;
  switch (frame.type) {
    case "hello": {
      sharesReset();
      presenceFromHello(frame);
      offersFromHello(frame);
      const held = new Set();
      for (const c of frame.chats || []) {
        held.add(c.chat);
        const v = openChat(c.chat, { ...(c.home_library ? { home_library: c.home_library } : {}),
          ...(c.channel ? { channel: c.channel } : {}) });
        v.join();
      }
      for (const v of chats.values()) {
        if (!held.has(v.id) && v.state === "active") settleUnheld(v);
      }
      for (const m of frame.mentions || []) showMention(m);
      roomJoin();
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
    case "offer_withdrawn":
      offerWithdrawn(frame);
      break;
    case "assigned": {
      const acceptedAt = offerAssigned(frame.chat);
      const v = openChat(frame.chat, {
        home_library: frame.home_library, patron: frame.patron, policy_url: frame.policy_url,
        question: frame.question, transfer_note: frame.transfer_note, channel: frame.channel,
      });
      v.join();
      v.loadLibrary();
      showAccepted(frame.chat, acceptedAt);
      break;
    }
    case "accept_failed":
      acceptFailed(frame);
      break;
    case "message":
      // `resent`: a line sent again that this socket had sent already (docs/protocol.md).
      if (view) (frame.resent ? view.acked(frame.client_id) : view.addMessage(frame));
      break;
    case "delivery":
      // Whether a line reached the texting patron's phone (docs/sms.md): shown on that line.
      if (view) view.showDelivery(frame);
      break;
    case "typing":
      if (view && frame.sender === "patron") view.showTyping(true);
      break;
    case "state":
      if (view && (frame.state === "ended" || frame.state === "abandoned")) view.setState("ended");
      break;
    case "unassigned":
      sharesOfChatEnd(frame.chat);
      if (view) view.setState({ ended: "ended", transferred: "transferred", taken_over: "taken over" }[frame.reason]
        || "lost");
      break;
    case "mentioned":
      showMention(frame);
      break;
    case "takeover_asked":
      askTakeover(frame);
      break;
    case "room_message":
      roomLine(frame);
      break;
    case "patron_presence":
      if (view) {
        view.patronLeft = !frame.present;
        view.render();
      }
      break;
    case "transfer_failed": {
      const text = {
        same_queue: t("The chat is already there."),
        closed: t("That target is closed now."),
        nobody: t("Nobody is present there now."),
        not_found: t("That target does not exist (or the chat is no longer yours)."),
      }[frame.reason] || frame.detail;
      notice(t("Transfer refused: {text} The chat stays with you.", { text }), "warn");
      break;
    }
    case "handback":
      // The way home (docs/console.md): the patron's home library can (or no longer can) take it back.
      if (view) view.handbackFrame(frame.available);
      break;
    case "referred":
      if (view) view.referred = true;
      notice(t("Follow-up ticket created; the patron gets a confirmation email."), "info");
      break;
    case "error":
      if (frame.client_id && roomRefused(frame)) {
        // a line of the staff room: back in its box (backchannel.js)
      } else if (frame.client_id) {
        for (const v of chats.values()) v.failed(frame.client_id, frame.detail || frame.code);
      } else if (shareAskRefused()) {
        // The answer to a share request (routing/services/shares.py): its capture was let go.
        notice(t("Sharing refused: {detail}", { detail: frame.detail }), "warn");
      } else if (frame.code !== "not_found") {
        notice(t("The server refused an action: {detail}", { detail: frame.detail || frame.code }), "warn");
      }
      break;
    default:
      if (frame.type.startsWith("share_")) shareFrame(frame);
      break;
  }
}

// The staff room is read-only while off duty: after anything that changes presence or the chats held.
const STANDING = new Set(["hello", "presence", "assigned", "unassigned", "state"]);

function handleAll(frame) {
  handle(frame);
  if (STANDING.has(frame.type)) {
    roomStanding(presence, [...chats.values()].filter((v) => v.state === "active").length);
  }
}

// For the browser tests and the soak script: the socket and the state, read-only in spirit.
window.vrConsole = { socket, chats, offers, get presence() { return presence; } };
handleFramesWith(handleAll);
updateCounts();
renderOffers();
socket.start();
