"""A local fake of Twilio's Messages resource: the one sanctioned stand-in of these tests (issue 15).

It listens on 127.0.0.1, takes `POST /2010-04-01/Accounts/{SID}/Messages.json` (form To, From, Body;
basic auth SID:token) and answers 201 with a message resource as Twilio does, recording each text it
took. It can be told to answer the next requests otherwise: a status (500, 400...) or "timeout"
(it holds the request without answering until the client gives up).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Received:
    to: str
    from_: str
    body: str
    sid: str


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sent: list[Received] = []  # texts taken (answered 201)
        self.requests = 0  # every request to the Messages resource, answered or not
        self.script: list[int | str] = []  # what to answer the next requests with, before 201 again
        self.media: dict[str, bytes] = {}  # media id -> the bytes a patron sent (MMS)
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._media(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeTwilio:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def answer_next(self, *answers: int | str) -> None:
        with self._lock:
            self.script.extend(answers)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.sent) >= count:
                    return list(self.sent)
            time.sleep(0.05)
        raise AssertionError(f"the fake Twilio took {len(self.sent)} text(s) in {timeout} s, not {count}")

    def add_media(self, data: bytes) -> str:
        """A file a patron sent by MMS: its address on the API host, as the webhook's MediaUrl0 gives it."""
        media_id = "ME" + secrets.token_hex(16)
        self.media[media_id] = data
        message = "MM" + secrets.token_hex(16)
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message}/Media/{media_id}"

    def _media(self, request: BaseHTTPRequestHandler) -> None:
        # As Twilio does: the API address (with the account's credentials) redirects to the file store,
        # which refuses a request that carries them.
        path = request.path
        if path.startswith("/files/"):
            data = self.media.get(path.removeprefix("/files/"))
            if request.headers.get("Authorization") or data is None:
                self._reply(request, 400, {"message": "no credentials here, and only known files"})
                return
            request.send_response(200)
            request.send_header("Content-Type", "application/octet-stream")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
            return
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {credentials}":
            self._reply(request, 401, {"code": 20003, "message": "Authenticate"})
            return
        media_id = path.rsplit("/", 1)[-1]
        if media_id not in self.media:
            self._reply(request, 404, {"code": 20404, "message": "not found"})
            return
        request.send_response(307)
        request.send_header("Location", f"{self.base_url}/files/{media_id}")
        request.send_header("Content-Length", "0")
        request.end_headers()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(request.rfile.read(length).decode()).items()}
        expected_path = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        credentials = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.path != expected_path:
            self._reply(request, 404, {"code": 20404, "message": "The requested resource was not found"})
            return
        if request.headers.get("Authorization") != f"Basic {credentials}":
            self._reply(request, 401, {"code": 20003, "message": "Authenticate"})
            return
        with self._lock:
            self.requests += 1
            answer = self.script.pop(0) if self.script else 201
        if answer == "timeout":
            self._release.wait(60)  # the client times out first and tries again
            return
        if answer != 201:
            self._reply(request, int(answer), {"code": 20500, "message": "Internal Server Error"})
            return
        missing = [k for k in ("To", "From", "Body") if not form.get(k)]
        if missing:
            self._reply(request, 400, {"code": 21604, "message": f"A '{missing[0]}' is required"})
            return
        sid = "SM" + secrets.token_hex(16)
        with self._lock:
            self.sent.append(Received(to=form["To"], from_=form["From"], body=form["Body"], sid=sid))
        self._reply(request, 201, {"sid": sid, "to": form["To"], "from": form["From"], "body": form["Body"],
                                   "status": "queued", "account_sid": self.account_sid})

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
