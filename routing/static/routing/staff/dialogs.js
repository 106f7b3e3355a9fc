// The dialogs of a chat: transfer it (to a librarian or a queue), refer it as a follow-up ticket,
// and end and classify it. Each sends its frame with sendSoon: a click during a reconnect is kept.

import { sendSoon } from "./connection.js";
import { $, getJSON, notice, postJSON } from "./page.js";
import { closeChat } from "./tabs.js";
import { t } from "./text.js";

export async function openTransfer(view) {
  const dialog = $("#dlg-transfer");
  const to = $("#transfer-to");
  to.replaceChildren(new Option(t("Loading…"), ""));
  $("#transfer-note").value = "";
  $("#transfer-who").textContent = "";
  dialog.returnValue = "";
  dialog.onclose = () => {
    dialog.onclose = null; // do not keep the chat's panel alive after it closes
    if (dialog.returnValue !== "ok" || !to.value) return;
    const [kind, target] = to.value.split(/:(.*)/s);
    const frame = { type: "transfer", chat: view.id, to: { [kind]: target }, note: $("#transfer-note").value };
    sendSoon(frame, t("Not connected: the transfer will be sent as soon as the connection is back."));
  };
  dialog.showModal();
  let data;
  try {
    data = await getJSON("/staff/api/presence");
  } catch (e) {
    to.replaceChildren(new Option(t("Could not load who is present"), ""));
    return;
  }
  to.replaceChildren(new Option(t("Choose…"), ""));
  const people = document.createElement("optgroup");
  people.label = t("Librarians present");
  for (const l of data.librarians.filter((x) => !x.me)) {
    people.append(new Option(t("{name} ({library}) — {active} of {capacity} chats", { ...l, library: l.library_name }), `librarian:${l.username}`));
  }
  const groups = { local: document.createElement("optgroup"), shared: document.createElement("optgroup") };
  groups.local.label = t("Libraries");
  groups.shared.label = t("Shared queues");
  for (const q of data.queues) {
    const others = q.present.filter((p) => !p.me).length;
    const option = new Option(q.open ? t("{name} — {n} present", { name: q.name, n: others }) : t("{name} — closed", { name: q.name }), `queue:${q.slug}`);
    option.disabled = !q.open || others === 0;
    (groups[q.kind] || groups.shared).append(option);
  }
  for (const g of [people, groups.local, groups.shared]) if (g.children.length) to.append(g);
  const count = data.librarians.filter((x) => !x.me).length;
  $("#transfer-who").textContent = count === 1 ? t("1 other librarian present.")
    : count ? t("{count} other librarians present.", { count }) : t("Nobody else is present: a transfer would be refused.");
}

export async function openRefer(view) {
  const dialog = $("#dlg-refer");
  const to = $("#refer-to");
  const home = view.info.home_library;
  to.replaceChildren(new Option(home ? home.name : t("The consortium (no home library)"), home ? home.slug : ""));
  $("#refer-note").value = "";
  $("#refer-deadline").value = "";
  dialog.returnValue = "";
  // Set before anything is awaited: a quick librarian may confirm before the library list arrives.
  dialog.onclose = () => {
    dialog.onclose = null; // do not keep the chat's panel alive after it closes
    if (dialog.returnValue !== "ok") return;
    const frame = { type: "refer", chat: view.id, note: $("#refer-note").value };
    if (to.value) frame.to = { library: to.value };
    // The patron's own deadline (a day), when they gave one: the follow-up is due by its end.
    if ($("#refer-deadline").value) frame.deadline = $("#refer-deadline").value;
    sendSoon(frame, t("Not connected: the referral will be sent as soon as the connection is back."));
  };
  dialog.showModal();
  try {
    const data = await getJSON("/staff/api/presence");
    for (const lib of data.libraries) if (!home || lib.slug !== home.slug) to.add(new Option(lib.name, lib.slug));
  } catch (e) {
    /* the home library alone is still a choice */
  }
}

export function openEnd(view) {
  const dialog = $("#dlg-end");
  const c = view.classification || {};
  $("#end-subjects").value = (c.subjects || []).join(", ");
  for (const r of dialog.querySelectorAll('input[name="end-read"]')) r.checked = String(c.read_scale) === r.value;
  $("#end-outcome").value = c.outcome || (view.referred ? "referred" : view.patronLeft ? "patron_left" : "answered");
  $("#end-ok").textContent = view.state === "active" ? t("End chat") : t("Save and close");
  $("#dlg-end-title").textContent = view.state === "active" ? t("End and classify") : t("Classify this chat");
  $("#end-error").textContent = "";
  dialog.returnValue = "";
  dialog.showModal();
  dialog.onclose = async () => {
    dialog.onclose = null; // do not keep the chat's panel alive after it closes
    if (dialog.returnValue !== "ok") return;
    const checked = dialog.querySelector('input[name="end-read"]:checked');
    const data = { subjects: $("#end-subjects").value, read_scale: checked ? Number(checked.value) : null,
      outcome: $("#end-outcome").value };
    if (view.state === "active") await sendSoon({ type: "end", chat: view.id },
      t("Not connected: the end of the chat will be sent as soon as the connection is back."));
    try {
      const saved = await postJSON(`/staff/api/chats/${encodeURIComponent(view.id)}/classify`, data);
      view.classification = saved;
      if (view.state !== "active") closeChat(view.id);
      else view.closeWhenEnded = true;
    } catch (e) {
      notice(t("The classification was not saved: {detail}", { detail: e.message }), "bad");
    }
  };
}


// End and block: one request (POST /staff/api/chats/<id>/block) ends the chat and blocks its patron,
// both or neither. The dialog stays open on a refusal (no reason, nothing to block by) to say why.
const HOURS_LABEL = { 1: t("1 hour"), 4: t("4 hours"), 24: t("24 hours"), 72: t("3 days"), 168: t("7 days"), 720: t("30 days") };

export function openBlock(view) {
  const dialog = $("#dlg-block");
  const form = $("#block-form");
  const hours = $("#block-hours");
  hours.replaceChildren(...(document.body.dataset.blockHours || "24").split(",").map(
    (h) => new Option(HOURS_LABEL[h] || t("{n} hours", { n: h }), h, h === "24", h === "24")));
  $("#block-reason").value = "";
  $("#block-address").checked = false;
  $("#block-error").textContent = "";
  $("#block-reason").oninput = () => { $("#block-error").textContent = ""; };
  $("#block-ok").disabled = false;
  const live = view.state === "active";
  $("#dlg-block-title").textContent = live ? t("End and block this patron") : t("Block this patron");
  $("#block-ok").textContent = live ? t("End chat and block") : t("Block");
  dialog.returnValue = "";
  form.onsubmit = async (e) => {
    if (e.submitter && e.submitter.value !== "ok") return; // Cancel closes the dialog as usual
    e.preventDefault();
    const reason = $("#block-reason").value.trim();
    if (!reason) {
      $("#block-error").textContent = t("Say why the patron is blocked.");
      $("#block-reason").focus();
      return;
    }
    $("#block-ok").disabled = true;
    try {
      await postJSON(`/staff/api/chats/${encodeURIComponent(view.id)}/block`,
        { reason, hours: Number(hours.value), address: $("#block-address").checked });
    } catch (err) {
      $("#block-ok").disabled = false;
      $("#block-error").textContent = t("Not blocked: {detail}", { detail: err.message });
      return;
    }
    form.onsubmit = null;
    dialog.close("ok");
    view.blocked = true;
    view.render();
    const span = HOURS_LABEL[hours.value] || t("{n} hours", { n: hours.value });
    notice(live ? t("The chat ended and its patron is blocked for {span}.", { span }) : t("The patron is blocked for {span}.", { span }), "info");
  };
  dialog.showModal();
  $("#block-reason").focus();
}
