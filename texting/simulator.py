"""The demo's SMS simulator (`python3 dev.py demo` only, the embedded default): a patron's phone in a
web page, so that a newcomer can try texting without a Twilio account.

Nothing in the service is bypassed but the phone network. The page's texts enter through the same
code as Twilio's webhook, signed with the simulator's auth token (texting.views.webhook_answer); the
replies leave through the same worker code (texting.outbound) over HTTP to `Outbox`, a stand-in for
Twilio's Messages resource that this process runs on its own port and keeps in memory (the embedded
default is one process). It is switched on by VR_SMS_SIMULATOR=1, refused outside the embedded
default, and every page says it is a simulator.

Why its own port: in the embedded default Celery runs the sending task in the request's own thread,
and Django runs every synchronous view in one thread, so a request from a view to this same server
would wait for itself."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

MAX_KEPT = 500


@dataclass(frozen=True)
class SimulatedText:
    to: str
    from_: str
    body: str
    at: str
    direction: str  # "in" (the phone sent it) or "out" (the service sent it)


_texts: list[SimulatedText] = []
_lock = threading.Lock()


def record(text: SimulatedText) -> None:
    with _lock:
        _texts.append(text)
        del _texts[:-MAX_KEPT]


def texts_of(phone: str) -> list[dict[str, str]]:
    with _lock:
        return [asdict(t) for t in _texts if phone in (t.to, t.from_)]


def now_text() -> str:
    return datetime.now(UTC).isoformat()


class _Outbox(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        expected = f"/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"
        credentials = base64.b64encode(f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}".encode())
        if self.path != expected or self.headers.get("Authorization") != f"Basic {credentials.decode()}":
            self._reply(401, {"code": 20003, "message": "Authenticate"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        record(SimulatedText(to=form.get("To", ""), from_=form.get("From", ""), body=form.get("Body", ""),
                             at=now_text(), direction="out"))
        self._reply(201, {"sid": "SM" + secrets.token_hex(16), "status": "queued"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def start_outbox() -> ThreadingHTTPServer:
    """Serve the stand-in Messages resource on TWILIO_API_BASE's port, in a thread of this process."""
    address = urlsplit(settings.TWILIO_API_BASE)
    server = ThreadingHTTPServer((address.hostname or "127.0.0.1", address.port or 80), _Outbox)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sms-simulator-outbox", daemon=True).start()
    return server
