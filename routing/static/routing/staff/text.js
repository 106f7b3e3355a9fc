// Everything a patron or librarian writes is shown as text, never as markup. Web links become
// links (http and https only), opening in a new tab without handing the console to the target.

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'")\]}]+$/;

function safeHref(candidate) {
  try {
    const url = new URL(candidate);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (e) {
    return null;
  }
}

export function appendText(el, text) {
  let last = 0;
  for (const match of String(text).matchAll(URL_RE)) {
    const raw = match[0].replace(TRAILING, "");
    const href = safeHref(raw);
    if (!href) continue;
    el.append(document.createTextNode(text.slice(last, match.index)));
    const a = document.createElement("a");
    a.href = href;
    a.textContent = raw;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    el.append(a);
    last = match.index + raw.length;
  }
  el.append(document.createTextNode(String(text).slice(last)));
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}

export function clockTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// The console's words in the librarian's language (routing/staff/i18n.py, in the page as JSON keyed by
// the English text); {placeholders} filled here. Missing (a page without them): the English text.
let STRINGS = null;
export function t(text, values = {}) {
  if (STRINGS === null) {
    const node = document.getElementById("console-strings");
    STRINGS = node ? JSON.parse(node.textContent) : {};
  }
  return (STRINGS[text] || text).replace(/\{(\w+)\}/g, (m, key) => (key in values ? String(values[key]) : m));
}
