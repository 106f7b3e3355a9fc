// The rota's "What if?" in place: as the coordinator edits a new shift (day, hours, librarians) the
// forecast of those hours is asked again (POST .../rota/what-if, the form's own fields and CSRF token)
// and redrawn under the form, without a reload. Without this script the button posts the form and the
// page comes back with the same table (coordination/views/rota.py): this only saves the round trip.
// The words come from the server in the coordinator's language; everything goes in with textContent.

const HOURS = /^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$/;
const WAIT_MS = 300; // after the last keystroke, so that typing "10:00-14:00" asks once, not eleven times

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

// The box the page draws for its own What if? (rota.html), made or found under the form.
function box(form, queue) {
  const id = `preview-${queue}`;
  let found = document.getElementById(id);
  if (!found) {
    found = el("div", null, "notice");
    found.id = id;
    found.setAttribute("role", "status");
    form.after(found);
  }
  return found;
}

function draw(form, result) {
  const target = box(form, result.queue);
  target.classList.remove("bad");
  const table = el("table", null, "grid");
  const head = el("tr");
  for (const name of result.columns) {
    const th = el("th", name);
    th.scope = "col";
    head.append(th);
  }
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  for (const row of result.rows) {
    const tr = el("tr");
    const th = el("th", row.hour);
    th.scope = "row";
    tr.append(th, el("td", row.before), el("td", row.after));
    table.tBodies[0].append(tr);
  }
  target.replaceChildren(el("p", result.summary), table);
}

function drawErrors(form, errors) {
  const target = box(form, form.elements.queue.value);
  target.classList.add("bad");
  target.replaceChildren(...errors.map((text) => el("p", text)));
}

function watch(form) {
  const url = form.dataset.whatIf;
  let timer = 0;
  let asked = 0; // only the latest answer is drawn: an older one may arrive after it

  async function ask() {
    const mine = ++asked;
    const body = new FormData(form);
    body.set("action", "shift_preview");
    let response;
    try {
      response = await fetch(url, { method: "POST", body, credentials: "same-origin",
                                    headers: { Accept: "application/json" } });
    } catch {
      return false; // offline: the button still posts the form
    }
    const type = response.headers.get("Content-Type") || "";
    if (!type.startsWith("application/json")) return false; // signed out, refused: let the page say so
    const result = await response.json();
    if (mine !== asked) return true;
    if (response.ok) draw(form, result);
    else drawErrors(form, result.errors || []);
    form.dataset.whatIfShown = String(mine); // for the browser test: which answer is on the page
    return true;
  }

  // Edits: asked again by themselves once a what-if is showing, or as soon as the hours are whole.
  form.addEventListener("input", () => {
    clearTimeout(timer);
    if (!HOURS.test(form.elements.hours.value)) return;
    timer = setTimeout(ask, WAIT_MS);
  });
  const button = form.querySelector('button[value="shift_preview"]');
  button?.addEventListener("click", async (event) => {
    if (!form.reportValidity()) return;
    event.preventDefault();
    clearTimeout(timer);
    if (!(await ask())) form.requestSubmit(button);
  });
}

for (const form of document.querySelectorAll("form[data-what-if]")) watch(form);
