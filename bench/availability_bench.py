#!/usr/bin/env python
"""Availability benchmark: how many GET /api/v1/<c>/availability one web process answers (issue 18).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/availability_bench.py --seconds 10 --connections 32

Every open widget polls the launcher's line, so the answer must be cheap: each web process keeps it
for 5 s (routing/availability.py) and serves it from memory until then. This starts the production
stack with ONE web process (daphne, PostgreSQL, Redis, the timer and worker, as tests/live/stack.py
starts it for the live tests), signs a librarian in so that the answer is "available", and then keeps
`--connections` HTTP/1.1 keep-alive connections asking as fast as they are answered, from a client
written on asyncio streams (an HTTP library would cost the client more CPU than the server spends),
with a widget's Origin header. Each request's time is from its first byte written to its last byte
read. The client shares the machine with the server: on 2 cores it takes about one of them.

Goal (issue 18): 1,000 requests a second from the kept answer, p99 under 20 ms.

The last line printed is a JSON summary (also written to --json FILE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ORIGIN = "https://library.example.org"


async def one_connection(host: str, port: int, path: str, until: float, times: list[float],
                         statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nOrigin: {ORIGIN}\r\n"
               "Connection: keep-alive\r\n\r\n").encode()
    try:
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            times.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def load(base: str, path: str, seconds: float, connections: int) -> tuple[list[float], dict[int, int], float]:
    parts = urlsplit(base)
    times: list[float] = []
    statuses: dict[int, int] = {}
    started = time.monotonic()
    await asyncio.gather(*(one_connection(parts.hostname or "127.0.0.1", parts.port or 80, path,
                                          started + seconds, times, statuses) for _ in range(connections)))
    return times, statuses, time.monotonic() - started


def percentile(sorted_times: list[float], q: float) -> float:
    return sorted_times[min(len(sorted_times) - 1, int(q * len(sorted_times)))] * 1000


async def run(args: argparse.Namespace) -> dict[str, object]:
    from tests.live.stack import PASSWORD, Stack, librarian, world

    bench_world = world("availbench", libraries=[{"slug": "main", "name": "Main Library"}],
                        staff=[{"username": "ben", "library": "main"}])
    bench_world["consortium"]["allowed_origins"] = [ORIGIN]
    with Stack.prepare([bench_world], db_prefix="vr_bench_avail").running(webs=1) as stack:
        sock, _hello, _ = await librarian(stack.base(), "ben", PASSWORD)
        path = "/api/v1/availbench/availability?library=main&lang=en"
        await load(stack.base(), path, 2.0, 4)  # warm-up: the first answer is worked out, then kept
        times, statuses, elapsed = await load(stack.base(), path, args.seconds, args.connections)
        await sock.close()
    times.sort()
    return {"bench": "availability", "connections": args.connections, "seconds": round(elapsed, 1),
            "requests": len(times), "per_second": round(len(times) / elapsed), "statuses": statuses,
            "p50_ms": round(percentile(times, 0.5), 2), "p90_ms": round(percentile(times, 0.9), 2),
            "p99_ms": round(percentile(times, 0.99), 2), "max_ms": round(times[-1] * 1000, 2),
            "mean_ms": round(statistics.mean(times) * 1000, 2), "cpus": os.cpu_count(),
            "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        parser.error("set DATABASE_URL (any database of the PostgreSQL server) and REDIS_URL")
    summary = asyncio.run(run(args))
    line = json.dumps(summary)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
