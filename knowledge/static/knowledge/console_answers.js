// The answers beside one chat in the staff console (issue 17): the knowledge base's answers that match
// the chat's question and the patron's latest lines (knowledge.selectors.console_answers: the home
// library's first, then the consortium's; drafts marked), each with one button that inserts its text
// at the caret of the reply box, and "Save as answer…", which opens a draft prefilled from the chat
// with the patron's identity removed (knowledge.drafting).
//
// Asked for again after each patron line, at most every REFRESH_MS. Everything is shown as text.

import { getJSON } from "../routing/staff/page.js";
import { t } from "../routing/staff/text.js";

const REFRESH_MS = 5000;

export class AnswersPanel {
  constructor(chatId, root, textarea) {
    this.chatId = chatId;
    this.root = root;
    this.textarea = textarea;
    this.list = root.querySelector(".answers-list");
    this.status = root.querySelector(".answers-status");
    this.save = root.querySelector(".save-answer");
    this.lastAsked = 0;
    this.timer = null;
    this.save.href = `/staff/answers/new?chat=${encodeURIComponent(chatId)}`;
  }

  // A patron line came, or the chat was (re)loaded: ask again, but not more often than REFRESH_MS.
  refresh() {
    const wait = this.lastAsked + REFRESH_MS - Date.now();
    if (wait > 0) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.refresh(), wait);
      return;
    }
    this.lastAsked = Date.now();
    this.load();
  }

  async load() {
    try {
      const data = await getJSON(`/staff/api/chats/${encodeURIComponent(this.chatId)}/answers`);
      this.render(data.answers || []);
    } catch (e) {
      this.status.textContent = t("The answers could not be loaded.");
    }
  }

  render(answers) {
    this.list.replaceChildren();
    this.status.textContent = answers.length ? "" : t("No answer matches this chat yet.");
    for (const a of answers) {
      const li = document.createElement("li");
      li.className = "answer";
      li.dataset.answer = String(a.id);
      li.lang = a.language;
      const head = document.createElement("p");
      head.className = "answer-head";
      const title = document.createElement("a");
      title.href = a.edit_url;
      title.target = "_blank";
      title.rel = "noopener";
      title.textContent = a.question;
      head.append(title);
      const meta = document.createElement("span");
      meta.className = "answer-meta";
      meta.textContent = ` · ${a.scope}${a.draft ? ` · ${t("draft (internal)")}` : ""}`;
      head.append(meta);
      if (a.draft) li.dataset.draft = "true";
      const text = document.createElement("p");
      text.className = "answer-text";
      text.textContent = a.text.length > 240 ? `${a.text.slice(0, 240)}…` : a.text;
      const insert = document.createElement("button");
      insert.type = "button";
      insert.className = "insert-answer";
      insert.textContent = t("Insert");
      insert.setAttribute("aria-label", t("Insert the answer “{question}” into the reply", { question: a.question }));
      insert.addEventListener("click", () => this.insert(a));
      li.append(head, text, insert);
      this.list.append(li);
    }
  }

  // The answer's text (and its public address, when published) at the caret; the librarian edits and sends.
  insert(answer) {
    const ta = this.textarea;
    const text = answer.url ? `${answer.text}\n\n${location.origin}${answer.url}` : answer.text;
    const start = ta.selectionStart ?? ta.value.length;
    const end = ta.selectionEnd ?? start;
    ta.value = ta.value.slice(0, start) + text + ta.value.slice(end);
    ta.focus();
    ta.selectionStart = ta.selectionEnd = start + text.length;
    ta.dispatchEvent(new Event("input", { bubbles: true }));
    this.status.textContent = t("Inserted “{question}”: edit it and send.", { question: answer.question });
  }
}
