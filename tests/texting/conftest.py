"""Texting's fixtures: texting switched on against a local fake of Twilio's API, and signed texts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from tests.routing.conftest import sent  # noqa: F401  (the frames the services publish)
from tests.texting.fake_twilio import FakeTwilio

SID = "AC" + "0" * 32
TOKEN = "test-auth-token-of-the-fake"
PUBLIC_URL = "https://ask.example.org"
WEBHOOK = "/sms/twilio/"


@pytest.fixture
def twilio(settings: Any) -> Iterator[FakeTwilio]:
    fake = FakeTwilio(SID, TOKEN).start()
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_API_BASE = fake.base_url
    settings.TWILIO_TIMEOUT = 1.0
    settings.PUBLIC_URL = PUBLIC_URL
    yield fake
    fake.stop()


def signed(params: dict[str, str], *, url: str = PUBLIC_URL + WEBHOOK, token: str = TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it, by the twilio package's own RequestValidator."""
    return str(RequestValidator(token).compute_signature(url, params))


_sids = iter(range(1, 1_000_000))


def text_params(body: str, *, phone: str = "+13055550123", to: str, sid: str | None = None,
                **extra: str) -> dict[str, str]:
    return {"MessageSid": sid or f"SM{next(_sids):032d}", "AccountSid": SID, "From": phone, "To": to,
            "Body": body, "NumMedia": "0", **extra}


def post_text(client: Client, params: dict[str, str], *, signature: str | None = None) -> Any:
    return client.post(WEBHOOK, params, HTTP_X_TWILIO_SIGNATURE=signed(params) if signature is None else signature)
