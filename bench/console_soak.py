"""Soak the staff console: one librarian's console in headless Chromium under simulated traffic.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vr_dev2 REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/console_soak.py --minutes 10

It starts the production stack on loopback (tests/live/stack.py: every deploy/Procfile process on a
fresh PostgreSQL database), signs a librarian in to /staff/ in Debian's Chromium, and then, until the
time is up, keeps `--concurrency` patrons chatting with that console: each patron starts a chat,
the console accepts it (by clicking, as a person does), the patron writes `--lines` lines at
`--interval` seconds, the librarian answers every third line by typing into the console and pressing
Enter (now and then an internal note), and the chat ends (mostly by the librarian through the End
dialog with a classification, every fourth by the patron). Every `--drop-every` seconds the
console's WebSocket is cut as a network failure would cut it, so resuming is exercised throughout.

Before each chat ends, the console's transcript is compared with the database: every sequence
number from 1 to the chat's last must be on screen exactly once (lost and doubled lines are
counted), and every reply the librarian typed must have reached the patron exactly once.

Every `--sample-every` seconds the browser's JS heap is measured after a forced garbage collection
(Chrome DevTools Protocol: HeapProfiler.collectGarbage, Performance.getMetrics), with the DOM node
and event-listener counts, so a leak shows as a rising line rather than as noise. The result is
printed as a table and written as JSON to bench/results/ (not committed).

Traffic goes only to the stack this script starts on 127.0.0.1, and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.live.stack import PASSWORD, Stack, patron, start_chat, world  # noqa: E402

CHROMIUM = os.environ.get("VR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-dev-shm-usage", "--enable-precise-memory-info"]


@dataclass
class Tally:
    chats: int = 0
    lines_checked: int = 0
    lost: int = 0
    doubled: int = 0
    replies: int = 0
    replies_lost: int = 0
    replies_doubled: int = 0
    drops: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass
class Sample:
    minute: float
    heap_mb: float
    nodes: int
    listeners: int
    chats: int
    open_chats: int
    lines_checked: int
    lost: int
    doubled: int


class Soak:
    def __init__(self, args: argparse.Namespace, stack: Stack, page: Any, cdp: Any) -> None:
        self.args = args
        self.stack = stack
        self.base = stack.base()
        self.page = page
        self.cdp = cdp
        self.ui = asyncio.Lock()  # one person at the keyboard: page actions never interleave
        self.tally = Tally()
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.stop_at = self.started + args.minutes * 60
        self.serial = 0

    def running(self) -> bool:
        return time.monotonic() < self.stop_at

    def last_seq(self, chat_id: str) -> int:
        return int(self.stack.sql(f"SELECT last_seq FROM routing_chat WHERE id = '{chat_id}'"))

    async def dom_seqs(self, chat_id: str) -> list[int]:
        return list(await self.page.eval_on_selector_all(
            f"#panel-{chat_id} .log .msg[data-seq]", "els => els.map(e => Number(e.dataset.seq))"))

    async def type_into(self, chat_id: str, text: str, *, internal: bool = False) -> None:
        box = f"#panel-{chat_id} textarea"
        async with self.ui:
            await self.page.click(f"#tab-{chat_id}")  # as a person does: to the chat's tab first
            await self.page.fill(box, text)
            if internal:
                await self.page.check(f"#panel-{chat_id} input.internal")
            await self.page.press(box, "Enter")

    async def one_chat(self, worker: int) -> None:
        self.serial += 1
        n = self.serial
        chat = await start_chat(self.base, "soak", f"Soak question {n}: where are the <b>maps</b>?",
                                library="tampa", name=f"Patron {n}", email=f"p{n}@example.org")
        cid = chat["id"]
        pat = await patron(self.base, chat)
        try:
            await self.accept(cid)
            replies: list[str] = []
            for i in range(self.args.lines):
                await pat.send({"type": "message", "body": f"chat {n} line {i} https://example.org/{i}",
                                "client_id": f"p{n}-{i}"})
                if i % 3 == 2:
                    internal = i % 9 == 8
                    text = f"chat {n} {'note' if internal else 'reply'} {i}"
                    await self.type_into(cid, text, internal=internal)
                    if not internal:
                        replies.append(text)
                await asyncio.sleep(self.args.interval * random.uniform(0.5, 1.5))
            await self.settle_and_check(cid, pat, replies)
            await self.end(cid, pat, by_patron=n % 4 == 0)
            self.tally.chats += 1
        except Exception as e:  # a soak reports what failed and keeps going
            state = await self.page.evaluate(
                "id => { const v = window.vrConsole.chats.get(id); return v ? v.state : 'no view'; }", cid)
            first_line = str(e).splitlines()[0][:200] if str(e) else ""
            self.tally.failures.append(f"chat {n} ({cid}): {type(e).__name__}: {first_line} [console: {state}]")
            await self.clean_up(cid)
        finally:
            await pat.close()

    async def clean_up(self, cid: str) -> None:
        """After a failure, end the chat and close its tab so it does not hold capacity for the rest of the run."""
        with contextlib.suppress(Exception):
            await self.page.evaluate(
                """id => {
                    window.vrConsole.socket.send({type: "end", chat: id});
                    setTimeout(() => document.querySelector(`#panel-${id} .do-close`)?.click(), 3000);
                }""", cid)
            await asyncio.sleep(4)

    def stop_now(self) -> None:
        """Ctrl-C or SIGTERM: no new chats; the ones under way finish, then the stack is stopped."""
        self.stop_at = time.monotonic()

    async def accept(self, cid: str) -> None:
        """Click Accept until the chat is ours: a click while the socket is down is refused with a
        notice (the console never queues an accept), and a person would simply click again."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            offer = self.page.locator(f'.offer[data-chat="{cid}"] .accept')
            panel = self.page.locator(f"#panel-{cid} textarea")
            if await panel.count():
                return
            if await offer.count() and await offer.is_enabled():
                async with self.ui:
                    with contextlib.suppress(Exception):
                        await offer.click(timeout=2000)
            with contextlib.suppress(Exception):
                await panel.wait_for(state="attached", timeout=3000)
        raise TimeoutError("the chat was never accepted")

    async def settle_and_check(self, cid: str, pat: Any, replies: list[str]) -> None:
        deadline = time.monotonic() + 30
        expected: list[int] = []
        seqs: list[int] = []
        while time.monotonic() < deadline:
            last = await asyncio.to_thread(self.last_seq, cid)
            expected = list(range(1, last + 1))
            seqs = await self.dom_seqs(cid)
            got = [f["body"] for f in pat.seen if f.get("type") == "message"]
            if sorted(set(seqs)) == expected and all(r in got for r in replies):
                break
            await asyncio.sleep(0.5)
        got = [f["body"] for f in pat.seen if f.get("type") == "message"]
        self.tally.lines_checked += len(expected)
        self.tally.lost += len(set(expected) - set(seqs))
        self.tally.doubled += len(seqs) - len(set(seqs))
        self.tally.replies += len(replies)
        self.tally.replies_lost += sum(1 for r in replies if r not in got)
        self.tally.replies_doubled += sum(max(0, got.count(r) - 1) for r in replies)
        if set(expected) - set(seqs) or len(seqs) != len(set(seqs)):
            self.tally.failures.append(f"{cid}: on screen {seqs}, expected 1..{len(expected)}")

    async def end(self, cid: str, pat: Any, *, by_patron: bool) -> None:
        if by_patron:
            await pat.send({"type": "end"})
            await self.page.locator(f'#tab-{cid}[data-ended="true"]').wait_for(state="attached", timeout=20000)
            async with self.ui:
                await self.page.click(f"#tab-{cid}")
                await self.page.click(f"#panel-{cid} .do-classify")
                await self.page.check('input[name="end-read"][value="1"]')
                await self.page.click("#end-ok")
        else:
            async with self.ui:
                await self.page.click(f"#tab-{cid}")
                await self.page.click(f"#panel-{cid} .do-end")
                await self.page.fill("#end-subjects", "maps, soak")
                await self.page.check('input[name="end-read"][value="2"]')
                await self.page.click("#end-ok")
        await self.page.locator(f"#panel-{cid}").wait_for(state="detached", timeout=20000)

    async def worker(self, worker: int) -> None:
        await asyncio.sleep(worker * 1.5)
        while self.running():
            await self.one_chat(worker)

    async def dropper(self) -> None:
        while self.running():
            await asyncio.sleep(self.args.drop_every)
            if not self.running():
                return
            await self.page.evaluate("window.vrConsole.socket.drop()")
            self.tally.drops += 1

    async def sample(self) -> Sample:
        await self.cdp.send("HeapProfiler.collectGarbage")
        metrics = {m["name"]: m["value"] for m in (await self.cdp.send("Performance.getMetrics"))["metrics"]}
        sample = Sample(
            minute=round((time.monotonic() - self.started) / 60, 2),
            heap_mb=round(metrics.get("JSHeapUsedSize", 0) / 2**20, 2),
            nodes=int(metrics.get("Nodes", 0)), listeners=int(metrics.get("JSEventListeners", 0)),
            chats=self.tally.chats, open_chats=await self.page.evaluate("window.vrConsole.chats.size"),
            lines_checked=self.tally.lines_checked, lost=self.tally.lost,
            doubled=self.tally.doubled,
        )
        self.samples.append(sample)
        print(f"  {sample.minute:6.1f} min  heap {sample.heap_mb:6.2f} MB  nodes {sample.nodes:6d}  "
              f"listeners {sample.listeners:5d}  open {sample.open_chats}  chats {sample.chats:4d}  "
              f"lines {sample.lines_checked:6d}  "
              f"lost {sample.lost}  doubled {sample.doubled}", flush=True)
        return sample

    async def sampler(self) -> None:
        while self.running():
            await self.sample()
            await asyncio.sleep(self.args.sample_every)

    async def run(self) -> None:
        await self.cdp.send("Performance.enable")
        tasks = [asyncio.create_task(self.worker(i)) for i in range(self.args.concurrency)]
        helpers = [asyncio.create_task(self.sampler())]
        if self.args.drop_every > 0:
            helpers.append(asyncio.create_task(self.dropper()))
        await asyncio.gather(*tasks)
        for h in helpers:
            h.cancel()
        await asyncio.sleep(2)
        await self.sample()


def report(soak: Soak, args: argparse.Namespace) -> dict[str, Any]:
    samples = soak.samples
    # Growth: the heap after the first quarter of the run against the last quarter (warm-up excluded).
    quarter = max(1, len(samples) // 4)
    early = statistics.median(s.heap_mb for s in samples[quarter:2 * quarter] or samples[:1])
    late = statistics.median(s.heap_mb for s in samples[-quarter:])
    result = {
        "minutes": args.minutes, "concurrency": args.concurrency, "lines_per_chat": args.lines,
        "interval": args.interval, "drop_every": args.drop_every,
        "tally": asdict(soak.tally),
        "heap_mb": {"min": min(s.heap_mb for s in samples), "max": max(s.heap_mb for s in samples),
                    "early_median": early, "late_median": late},
        "nodes": {"min": min(s.nodes for s in samples), "max": max(s.nodes for s in samples)},
        "samples": [asdict(s) for s in samples],
    }
    t = soak.tally
    print("\nResult")
    print(f"  chats completed        {t.chats}")
    print(f"  lines checked          {t.lines_checked}  (lost {t.lost}, doubled {t.doubled})")
    print(f"  replies typed          {t.replies}  (lost {t.replies_lost}, doubled {t.replies_doubled})")
    print(f"  connection drops       {t.drops}")
    print(f"  JS heap (after GC)     {result['heap_mb']['min']}..{result['heap_mb']['max']} MB; "
          f"median early {early} MB, late {late} MB")
    print(f"  DOM nodes              {result['nodes']['min']}..{result['nodes']['max']}")
    print(f"  failures               {len(t.failures)}")
    for f in t.failures[:20]:
        print(f"    {f}")
    return result


async def main(args: argparse.Namespace) -> int:
    from playwright.async_api import async_playwright

    the_world = world("soak", [{"slug": "tampa"}], [{"username": "soak", "library": "tampa", "capacity": 5}],
                      reconnect_grace=30, local_timeout=60, idle_timeout=3600)
    stack = await asyncio.to_thread(Stack.prepare, [the_world])
    try:
        await asyncio.to_thread(stack.start)
        base = stack.base()
        print(f"stack on {base}; logs in {stack.workdir}", flush=True)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{base}/accounts/login/?next=/staff/?idle=0")
            await page.fill("#id_username", "soak")
            await page.fill("#id_password", PASSWORD)
            await page.click("button[type=submit]")
            await page.locator('#conn[data-state="connected"]').wait_for(timeout=30000)
            await page.click("#presence")
            await page.locator('#presence[aria-pressed="true"]').wait_for()
            cdp = await page.context.new_cdp_session(page)
            soak = Soak(args, stack, page, cdp)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, soak.stop_now)
            print(f"soaking for {args.minutes} min, {args.concurrency} chats at a time", flush=True)
            await soak.run()
            result = report(soak, args)
            result["page_errors"] = errors
            if errors:
                print(f"  page errors            {errors[:5]}")
            await browser.close()
        out = Path(args.out) if args.out else ROOT / "bench" / "results" / f"console-soak-{int(time.time())}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        print(f"\nwritten to {out}")
        t = soak.tally
        ok = not (t.lost or t.doubled or t.replies_lost or t.replies_doubled or errors)
        return 0 if ok else 1
    finally:
        await asyncio.to_thread(stack.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=3, help="chats open at once (the console's capacity)")
    parser.add_argument("--lines", type=int, default=30, help="patron lines per chat")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a patron's lines (mean)")
    parser.add_argument("--drop-every", type=float, default=60.0, help="cut the console's socket this often (s)")
    parser.add_argument("--sample-every", type=float, default=30.0, help="measure the JS heap this often (s)")
    parser.add_argument("--out", default="", help="JSON result path (default bench/results/...)")
    sys.exit(asyncio.run(main(parser.parse_args())))
