// The console page itself: who is signed in, the server's clock, the two collections every part of
// the console reads (waiting chats and held chats), notices, HTTP, and the window title.

import { t } from "./text.js";

const body = document.body;
export const ME = {
  username: body.dataset.username,
  library: body.dataset.library,
  capacity: Number(body.dataset.capacity || 3),
};
export const CSRF = body.dataset.csrf;
// Server minus browser clock: waits and countdowns are computed from server times.
const SKEW = Date.parse(body.dataset.serverNow) - Date.now() || 0;
export const serverNow = () => Date.now() + SKEW;

export const $ = (sel, root = document) => root.querySelector(sel);
export const offers = new Map(); // chat id -> {frame, el}
export const chats = new Map(); // chat id -> ChatView

// --- notices --------------------------------------------------------------------------------------

export function notice(text, kind = "info", { sticky = false, key = null, action = null } = {}) {
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
  close.textContent = t("Dismiss");
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

export async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (r.status === 401) location.assign("/accounts/login/?next=/staff/");
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

export async function postJSON(url, data) {
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

// --- the title ------------------------------------------------------------------------------------

export function updateTitle() {
  const unread = [...chats.values()].reduce((n, c) => n + c.unread, 0);
  const waiting = offers.size;
  const parts = [];
  if (waiting) parts.push(`${waiting} waiting`);
  if (unread) parts.push(`${unread} unread`);
  document.title = `${parts.length ? `(${parts.join(", ")}) ` : ""}Console · Staff`;
}
