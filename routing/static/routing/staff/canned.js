// The canned-response type-ahead of one chat's reply box: `/` typed at the start of the box opens a
// list of the responses offered in this chat (already filled in for it by the server, the chat's
// language first: routing/canned.py), narrowed by every word typed after the `/` (title and text);
// Up and Down choose, Enter or a click puts the chosen text in place of "/words", Escape closes.
//
// The reply box is the combobox and the list its listbox (WAI-ARIA combobox pattern, list
// autocomplete): focus stays in the box, the chosen option is aria-activedescendant, and a polite
// live region says how many match. Each chat's picker has its own ids, so several chats can be open.
//
// The picker's keydown listener is registered before the chat's own (Enter sends): while the list is
// open it takes Up, Down, Enter and Escape, and Enter never sends a half-typed "/words" to the patron.

import { t } from "./text.js";

const MAX_SHOWN = 50;

export class CannedPicker {
  // `responses` is called each time: the chat's info (and so its responses) may arrive later.
  constructor(textarea, id, responses) {
    this.textarea = textarea;
    this.responses = responses;
    this.items = [];
    this.active = -1;
    this.dismissed = false;
    this.list = document.createElement("ul");
    this.list.className = "canned-list";
    this.list.id = `canned-list-${id}`;
    this.list.setAttribute("role", "listbox");
    this.list.setAttribute("aria-label", t("Canned responses"));
    this.list.hidden = true;
    this.status = document.createElement("p");
    this.status.className = "visually-hidden canned-status";
    this.status.setAttribute("aria-live", "polite");
    textarea.before(this.list);
    textarea.after(this.status);
    textarea.setAttribute("role", "combobox");
    textarea.setAttribute("aria-autocomplete", "list");
    textarea.setAttribute("aria-haspopup", "listbox");
    textarea.setAttribute("aria-controls", this.list.id);
    textarea.setAttribute("aria-expanded", "false");
    textarea.addEventListener("keydown", (e) => this.keydown(e));
    textarea.addEventListener("input", () => this.update());
    textarea.addEventListener("click", () => this.update());
    textarea.addEventListener("blur", () => this.close());
    // A click chooses without taking the focus out of the reply box.
    this.list.addEventListener("mousedown", (e) => e.preventDefault());
    this.list.addEventListener("click", (e) => {
      const li = e.target.closest("li[data-index]");
      if (li) this.choose(Number(li.dataset.index));
    });
  }

  get isOpen() {
    return !this.list.hidden;
  }

  // The words after a `/` at the very start of the box, up to the caret; null when there is none.
  query() {
    const ta = this.textarea;
    const caret = ta.selectionEnd ?? ta.value.length;
    const before = ta.value.slice(0, caret);
    if (!before.startsWith("/") || before.includes("\n")) return null;
    return before.slice(1);
  }

  update() {
    const query = this.query();
    if (query === null) {
      this.dismissed = false;
      this.close();
      return;
    }
    if (this.dismissed) return;
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    this.items = (this.responses() || [])
      .filter((r) => {
        const text = `${r.title} ${r.body}`.toLowerCase();
        return words.every((w) => text.includes(w));
      })
      .slice(0, MAX_SHOWN);
    this.active = this.items.length ? 0 : -1;
    this.render();
  }

  render() {
    this.list.replaceChildren();
    this.items.forEach((r, i) => {
      const li = document.createElement("li");
      li.id = `${this.list.id}-${i}`;
      li.dataset.index = String(i);
      li.dataset.key = r.key;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", i === this.active ? "true" : "false");
      li.lang = r.language;
      const title = document.createElement("span");
      title.className = "c-title";
      title.textContent = r.title;
      const lang = document.createElement("span");
      lang.className = "c-lang";
      lang.textContent = r.language === "es" ? "Español" : "English";
      lang.lang = "en";
      const body = document.createElement("span");
      body.className = "c-body";
      body.textContent = r.body;
      li.append(title, lang, body);
      this.list.append(li);
    });
    if (!this.items.length) {
      const li = document.createElement("li");
      li.className = "c-none";
      li.setAttribute("role", "option");
      li.setAttribute("aria-disabled", "true");
      li.setAttribute("aria-selected", "false");
      li.textContent = (this.responses() || []).length ? t("No canned response matches.") : t("No canned responses yet.");
      this.list.append(li);
    }
    this.list.hidden = false;
    this.textarea.setAttribute("aria-expanded", "true");
    this.showActive();
    const n = this.items.length;
    this.status.textContent = n
      ? (n === 1 ? t("1 canned response. Up and Down to choose, Enter to insert, Escape to close.")
        : t("{n} canned responses. Up and Down to choose, Enter to insert, Escape to close.", { n }))
      : t("No canned response matches.");
  }

  showActive() {
    for (const li of this.list.querySelectorAll("li[data-index]")) {
      li.setAttribute("aria-selected", Number(li.dataset.index) === this.active ? "true" : "false");
    }
    const li = this.active >= 0 ? this.list.children[this.active] : null;
    if (li) {
      this.textarea.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    } else {
      this.textarea.removeAttribute("aria-activedescendant");
    }
  }

  close() {
    if (this.list.hidden) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.items = [];
    this.active = -1;
    this.textarea.setAttribute("aria-expanded", "false");
    this.textarea.removeAttribute("aria-activedescendant");
    this.status.textContent = "";
  }

  keydown(e) {
    if (!this.isOpen || e.isComposing) return;
    const n = this.items.length;
    let handled = true;
    if (e.key === "ArrowDown" && n) {
      this.active = (this.active + 1) % n;
      this.showActive();
    } else if (e.key === "ArrowUp" && n) {
      this.active = (this.active - 1 + n) % n;
      this.showActive();
    } else if (e.key === "Enter" && !e.shiftKey) {
      // With nothing chosen Enter only closes the list: "/words" is never sent by mistake.
      if (this.active >= 0) this.choose(this.active);
      else this.dismiss();
    } else if (e.key === "Escape") {
      this.dismiss();
    } else {
      handled = false;
    }
    if (handled) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }

  // Closed by the librarian: it stays closed while the box still starts with this `/`.
  dismiss() {
    this.dismissed = true;
    this.close();
    this.status.textContent = t("Canned responses closed.");
  }

  choose(index) {
    const chosen = this.items[index];
    if (!chosen) return;
    const ta = this.textarea;
    const caret = ta.selectionEnd ?? ta.value.length;
    // "/words" before the caret gives way to the response; whatever follows the caret is kept.
    ta.value = chosen.body + ta.value.slice(caret);
    ta.selectionStart = ta.selectionEnd = chosen.body.length;
    this.close();
    this.status.textContent = t("Inserted {title}.", { title: chosen.title });
    ta.focus();
  }
}
