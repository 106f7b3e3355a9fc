// The demo's SMS simulator: this page sends texts as a phone would and shows what the service texts back.
const form = document.getElementById("sim");
const thread = document.getElementById("thread");
const status = document.getElementById("status");
let shown = "";
// The page's words, in the reader's language (the template's data-* attributes); {placeholders} filled here.
const say = (name, values = {}) => form.dataset[name].replace(/\{(\w+)\}/g, (m, key) => values[key] ?? m);

async function refresh() {
  const phone = form.elements.phone.value.trim();
  const response = await fetch(`${form.dataset.texts}?phone=${encodeURIComponent(phone)}`);
  if (!response.ok) return;
  const { texts } = await response.json();
  const key = JSON.stringify(texts);
  if (key === shown) return;
  shown = key;
  thread.replaceChildren(...texts.map((t) => {
    const li = document.createElement("li");
    li.className = t.direction === "in" ? "sent" : "received";
    const meta = document.createElement("span");
    meta.className = "meta";
    const who = t.direction === "in" ? say("to", { number: t.to }) : say("from", { number: t.from_ });
    meta.textContent = `${who} · ${new Date(t.at).toLocaleTimeString()}`;
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = t.body;
    li.append(meta, body);
    return li;
  }));
  thread.scrollTop = thread.scrollHeight;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(form);
  status.textContent = say("sending");
  const response = await fetch(form.dataset.send, {
    method: "POST", body: data, headers: { "X-CSRFToken": data.get("csrfmiddlewaretoken") },
  });
  status.textContent = response.ok ? "" : say("notSent", { error: (await response.json()).error || response.status });
  if (response.ok) form.elements.body.value = "";
  refresh();
});
form.elements.body.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});
form.elements.phone.addEventListener("change", refresh);
setInterval(refresh, 2000);
refresh();
