// The console's one socket (socket.js keeps it alive), the connection indicator, and sending what
// may wait for a reconnect. Frames go to the handler console.js installs; the parts of the page
// that depend on the connection (the Accept buttons) ask to hear of its state.

import { $, notice } from "./page.js";
import { StaffSocket } from "./socket.js";
import { t } from "./text.js";

let frameHandler = () => {};
const stateListeners = [];
const connectedWaiters = [];

export const socket = new StaffSocket(document.body.dataset.ws, {
  onFrame: (frame) => frameHandler(frame),
  onState: showConnection,
});

export function handleFramesWith(handler) {
  frameHandler = handler;
}

// `listener(state)` on every change of the connection's state.
export function onConnectionState(listener) {
  stateListeners.push(listener);
}

// Resolves once the server has taken the console back (after its hello has been handled).
function whenConnected() {
  return socket.isOpen ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve));
}

// End, transfer and referral are safe to send a little later: a click during a reconnect is kept
// and sent when the connection is back, instead of being lost with only a notice (`saying`) to show for it.
export async function sendSoon(frame, saying) {
  if (socket.send(frame)) return true;
  notice(saying, "warn", { key: `soon-${frame.chat}` });
  await whenConnected();
  return socket.send(frame);
}

function showConnection(state, detail) {
  const el = $("#conn");
  el.dataset.state = state;
  const text = {
    connecting: t("Connecting…"),
    connected: t("Connected"),
    reconnecting: detail.retryAt
      ? t("Connection lost — retrying in {seconds} s", { seconds: Math.max(1, Math.round((detail.retryAt - Date.now()) / 1000)) })
      : t("Reconnecting…"),
    offline: t("Offline — waiting for the network"),
    "signed-out": t("Signed out"),
    forbidden: t("Not allowed"),
  }[state] || state;
  el.textContent = text;
  $("#presence").disabled = state !== "connected";
  for (const listener of stateListeners) listener(state);
  if (state === "connected") {
    for (const resolve of connectedWaiters.splice(0)) resolve();
  }
  if (state === "signed-out") {
    notice(t("Your session ended. Sign in again to go on; your chats wait for you for a short while."), "bad",
      { sticky: true, key: "conn" });
    setTimeout(() => location.assign("/accounts/login/?next=/staff/"), 1500);
  } else if (state === "forbidden") {
    notice(t("The server refused this console (not a staff account, or an unknown address)."), "bad",
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
