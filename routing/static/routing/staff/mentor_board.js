// The mentor board: its rows fetched again every few seconds (the server renders them).
const seconds = Number(document.body.dataset.refreshSeconds || 5);

async function refresh() {
  try {
    const r = await fetch(`${location.pathname}?rows=1`, { credentials: "same-origin" });
    if (r.status === 401 || r.redirected) return;
    if (r.ok) document.getElementById("board-rows").innerHTML = await r.text();
  } catch (e) {
    /* the next round tries again */
  }
}

setInterval(refresh, seconds * 1000);
