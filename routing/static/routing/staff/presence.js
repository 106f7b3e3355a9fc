// The librarian's presence: the Available/Away toggle, the end of the shift, and idle auto-away.
// The server decides presence; this page asks for changes and shows what the server says.

import { sendSoon, socket } from "./connection.js";
import { IdleWatch } from "./idle.js";
import { $, notice } from "./page.js";
import { clockTime, t } from "./text.js";

export let presence = "away";
let idleAwayPending = false;

// After every (re)connection: the server's word on presence and the shift, and an idle away that
// could not be sent while the socket was down.
export function presenceFromHello(frame) {
  setPresence(frame.presence);
  showShift(frame.presence === "available" ? frame.shift : null);
  if (idleAwayPending && frame.presence === "available") socket.send({ type: "presence", status: "away" });
  idleAwayPending = false;
}

export function setPresence(status, reason, frame = {}) {
  presence = status;
  const button = $("#presence");
  button.setAttribute("aria-pressed", status === "available" ? "true" : "false");
  button.textContent = status === "available" ? t("Available") : t("Away");
  button.title = status === "available" ? t("You are offered new chats. Click to go away.")
    : t("You are not offered new chats. Click when you are ready.");
  if (status === "away") showShift(null);
  if (status === "away" && reason === "offer_expired") {
    notice(t("You were set to Away because a chat offered to you expired. Click Away to become available again."),
      "warn", { sticky: true, key: "presence" });
  } else if (status === "away" && reason === "shift_end") {
    const at = frame.ends_at ? ` (${clockTime(frame.ends_at)})` : "";
    notice(t("You were set to Away at the end of your shift{at}. Chats you hold stay with you. Click Away to become available again.", { at }), "info", { sticky: true, key: "presence" });
  } else if (status === "available") {
    $("#notices").querySelector('[data-key="presence"]')?.remove();
  }
}

// --- the end of the shift -------------------------------------------------------------------------
// The server keeps the end of the librarian's shift and sets them away then (even with this page
// asleep); the console shows it beside the toggle and, a few minutes before, a notice with a way to
// stay on. `shift` carries the end (null: no automatic away), `shift_ending` the warning.

export function showShift(frame) {
  const el = $("#shift-end");
  const box = $("#notices");
  const ends = frame && frame.ends_at ? frame.ends_at : null;
  el.hidden = !ends;
  el.textContent = ends ? t("Shift ends {time}", { time: clockTime(ends) }) : "";
  el.dataset.warning = frame && frame.type === "shift_ending" ? "true" : "false";
  if (!frame || frame.type !== "shift_ending") {
    box.querySelector('[data-key="shift"]')?.remove();
    return;
  }
  const minutes = Math.max(1, Math.round((frame.extend_by || 1800) / 60));
  notice(t("Your shift ends at {time}: you will be set to Away then, and chats you hold stay with you. Covering overtime? Stay available a while longer.", { time: clockTime(ends) }), "info", {
    sticky: true,
    key: "shift",
    action: {
      label: minutes === 1 ? t("I'm staying on (1 more minute)") : t("I'm staying on ({minutes} more minutes)", { minutes }),
      run: (el) => {
        el.querySelector("button.primary").disabled = true;
        sendSoon({ type: "stay_on" },
          t("Not connected: the request to stay on will be sent as soon as the connection is back."));
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
  return saved !== null ? Number(saved) : Number(document.body.dataset.idleSeconds || 900);
}
const idle = new IdleWatch(idleSeconds(), (seconds) => {
  if (presence !== "available") return;
  const minutes = seconds >= 60 ? t("{n} minutes", { n: Math.round(seconds / 60) }) : t("{n} seconds", { n: seconds });
  if (!socket.send({ type: "presence", status: "away" })) idleAwayPending = true;
  notice(t("You were set to Away after {time} without activity. Click Away to become available again.", { time: minutes }),
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
