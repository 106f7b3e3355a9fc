"""Twilio's Messages resource over plain HTTP (docs/sms.md, "Outbound").

`POST {TWILIO_API_BASE}/2010-04-01/Accounts/{SID}/Messages.json`, form `To`, `From`, `Body`, HTTP
basic auth SID:token. Plain HTTP rather than the `twilio` package's client: the address must point at
a local fake in tests, and each try must be exactly one request with our own timeout (the package's
client has its own retries and region rewriting of the host)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings


class SendFailed(Exception):
    """The text was not taken. `retry`: worth another try (a timeout, no connection, 5xx or 429)."""

    def __init__(self, detail: str, *, retry: bool) -> None:
        super().__init__(detail)
        self.retry = retry


@dataclass(frozen=True)
class Sent:
    sid: str  # the provider's id of the message (SM...)


def messages_url() -> str:
    return f"{settings.TWILIO_API_BASE}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Messages.json"


def send(*, to: str, from_: str, body: str) -> Sent:
    data = urllib.parse.urlencode({"To": to, "From": from_, "Body": body}).encode()
    credentials = f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}".encode()
    request = urllib.request.Request(messages_url(), data=data, method="POST", headers={
        "Authorization": "Basic " + base64.b64encode(credentials).decode(),
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=settings.TWILIO_TIMEOUT) as response:
            payload = response.read()
    except urllib.error.HTTPError as e:
        # Twilio answers errors as JSON {"code": 21211, "message": "..."}: keep the gist for the console.
        detail = _error_detail(e)
        raise SendFailed(f"HTTP {e.code}: {detail}", retry=e.code >= 500 or e.code == 429) from e
    except TimeoutError as e:
        raise SendFailed("no answer in time", retry=True) from e
    except urllib.error.URLError as e:
        retry = isinstance(e.reason, OSError)  # refused, reset, unreachable: the provider may be back soon
        raise SendFailed(f"cannot reach the provider: {e.reason}", retry=retry) from e
    except OSError as e:  # a connection reset while reading the answer
        raise SendFailed(f"connection lost: {e}", retry=True) from e
    try:
        sid = str(json.loads(payload).get("sid") or "")
    except (ValueError, AttributeError):
        sid = ""
    return Sent(sid=sid)


def _error_detail(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read() or b"{}")
    except (ValueError, OSError):
        return error.reason or ""
    if isinstance(body, dict) and body.get("message"):
        return f"{body.get('code', '')} {body['message']}".strip()[:150]
    return str(error.reason or "")
