"""Twilio's request signature (docs/sms.md, "Inbound"): base64 of HMAC-SHA1, keyed with the auth
token, over the URL Twilio called followed by each POST parameter's name and value, sorted by name.

Checked with the `twilio` package's own RequestValidator, so the scheme is Twilio's, not our reading
of it (it also accepts the URL with and without the default port, as Twilio may sign either)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from twilio.request_validator import RequestValidator


def webhook_url(path: str) -> str:
    """The address Twilio called: PUBLIC_URL and the path (behind a proxy the request's Host may differ)."""
    return settings.PUBLIC_URL + path


def is_valid(url: str, params: Mapping[str, Any], signature: str) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    if not signature or not token:
        return False
    return bool(RequestValidator(token).validate(url, params, signature))


def sign(url: str, params: Mapping[str, Any]) -> str:
    """The signature Twilio would send (the demo's simulator signs its texts with it)."""
    return str(RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(url, params))
