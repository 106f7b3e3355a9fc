"""One HTTP request through an ASGI application, in a test, answered to the end.

The response's last body frame is not the end of Django's handler: after it, the handler closes
the response, and that fires `request_finished`, which gives the request thread's database
connection back to the pool. A test that stops at the last body frame and drops its communicator
leaves the handler's task pending; the task is then garbage-collected unfinished ("Task was
destroyed but it is pending!") and its connection stays checked out of the pool for the rest of
the process. With the pool at VR_DB_POOL_MAX (10) a worker of the PostgreSQL suite ran dry after
ten such requests, failing later, unrelated socket tests. So every test request waits for the
application to finish.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.testing import ApplicationCommunicator


async def request(app: Any, method: str, target: str, *, body: bytes = b"", peer: str = "203.0.113.9",
                  headers: list[tuple[bytes, bytes]] | None = None,
                  timeout: float = 20) -> tuple[int, dict[bytes, bytes], bytes]:
    """Send one request for `target` (a path, with its query if any) to `app` and return its status,
    headers (names lower-cased) and body, once the application has finished with it (its database
    connections back in the pool). The Host header is 127.0.0.1 unless `headers` has one."""
    path, _, query = target.partition("?")
    headers = list(headers or [])
    if not any(name.lower() == b"host" for name, _ in headers):
        headers.insert(0, (b"host", b"127.0.0.1"))
    comm = ApplicationCommunicator(app, {
        "type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "root_path": "", "scheme": "http", "client": (peer, 50000),
        "server": ("127.0.0.1", 8000), "headers": headers})
    await comm.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await comm.receive_output(timeout=timeout)
    content = b""
    while True:
        part = await comm.receive_output(timeout=timeout)
        content += part.get("body", b"")
        if not part.get("more_body"):
            break
    await comm.wait(timeout=timeout)
    return int(start["status"]), {k.lower(): v for k, v in start.get("headers", [])}, content


async def post_json(app: Any, path: str, body: dict[str, Any], origin: str) -> tuple[int, dict[bytes, bytes], Any]:
    """POST `body` as JSON from a page of `origin`; the answer's body decoded (None when empty)."""
    status, headers, content = await request(
        app, "POST", path, body=json.dumps(body).encode(),
        headers=[(b"content-type", b"application/json"), (b"origin", origin.encode())])
    return status, headers, json.loads(content or b"null")
