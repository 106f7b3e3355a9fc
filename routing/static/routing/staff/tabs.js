// The chats this librarian holds, one tab each: which is shown, moving between tabs with the
// keyboard, closing one, and the counts in the bar. The tab and the panel of a chat are its
// ChatView's (chat_view.js); this module only chooses among them.

import { $, ME, chats, updateTitle } from "./page.js";
import { t } from "./text.js";

export let selected = null;
let lastTabChoice = 0; // when the librarian last chose a tab themselves

// The librarian chose this tab (a click, the arrow keys).
export function chooseTab(id) {
  lastTabChoice = Date.now();
  select(id);
}

export function closeChat(id) {
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

export function select(id) {
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

// A chat just assigned after Accept was clicked here (at `acceptedAt`) is shown, unless the librarian
// is in the middle of a reply elsewhere: the new tab appears beside it and waits (switching under
// their fingers loses their place). Nor when they have chosen another tab since clicking Accept.
export function showAccepted(id, acceptedAt) {
  if (acceptedAt && lastTabChoice < acceptedAt && !busyElsewhere(id)) select(id);
}

export function tabKeys(e, id) {
  const ids = [...chats.keys()];
  const i = ids.indexOf(id);
  let next = null;
  if (e.key === "ArrowRight") next = ids[(i + 1) % ids.length];
  if (e.key === "ArrowLeft") next = ids[(i - 1 + ids.length) % ids.length];
  if (e.key === "Home") next = ids[0];
  if (e.key === "End") next = ids[ids.length - 1];
  if (next) {
    e.preventDefault();
    chooseTab(next);
    chats.get(next).tab.focus();
  }
}

export function updateCounts() {
  const active = [...chats.values()].filter((c) => c.state === "active").length;
  $("#chat-count").textContent = t("{active} of {capacity}", { active, capacity: ME.capacity });
  $("#chats-empty").hidden = chats.size > 0;
  updateTitle();
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && selected && chats.has(selected)) {
    chats.get(selected).unread = 0;
    chats.get(selected).render();
    updateTitle();
  }
});
