"""A librarian's console socket, run inside a network namespace by test_network_faults.py:

    ip netns exec NS python -m tests.faults.netns_librarian WS_URL ORIGIN COOKIE

Connects, goes available, accepts every offer, and prints one JSON line per event the test waits for
("hello", "available", "assigned"); then holds the socket open until killed. Like a browser it sends
no WebSocket pings of its own: only the server's pings can find out that the link is gone.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect


def say(**event: object) -> None:
    print(json.dumps(event), flush=True)


async def main(url: str, origin: str, cookie: str) -> None:
    async with connect(url, additional_headers={"Origin": origin, "Cookie": cookie}, ping_interval=None,
                       open_timeout=30) as ws:
        async for raw in ws:
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "hello":
                say(event="hello", presence=frame.get("presence"))
                await ws.send(json.dumps({"type": "presence", "status": "available"}))
            elif kind == "presence":
                say(event=frame.get("status"))
            elif kind == "offer":
                await ws.send(json.dumps({"type": "accept", "chat": frame["chat"]}))
            elif kind == "assigned":
                say(event="assigned", chat=frame["chat"])
    say(event="closed")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
