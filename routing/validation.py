"""Checking what clients send: socket frames and API bodies. Errors name the field and the rule."""

from __future__ import annotations

from typing import Any

MAX_FRAME_BYTES = 64 * 1024
MAX_BODY = 4000
MAX_CLIENT_ID = 64
MAX_NOTE = 2000


class Invalid(Exception):
    def __init__(self, detail: str, code: str = "invalid") -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


def text(frame: dict[str, Any], field: str, *, max_len: int, required: bool = True, min_len: int = 1) -> str:
    value = frame.get(field)
    if value is None:
        if required:
            raise Invalid(f"{field} is required")
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string")
    if len(value) > max_len:
        raise Invalid(f"{field} is longer than {max_len} characters", code="too_large")
    if required and len(value.strip()) < min_len:
        raise Invalid(f"{field} must not be empty")
    return value


def client_id(frame: dict[str, Any]) -> str | None:
    value = frame.get("client_id")
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_CLIENT_ID:
        raise Invalid(f"client_id must be a string of 1..{MAX_CLIENT_ID} characters")
    return value


def integer(frame: dict[str, Any], field: str, *, default: int = 0, minimum: int = 0) -> int:
    value = frame.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Invalid(f"{field} must be a whole number >= {minimum}")
    return value


def chat_id(frame: dict[str, Any]) -> str:
    value = frame.get("chat")
    if not isinstance(value, str) or not value or len(value) > 32:
        raise Invalid("chat must be a chat id")
    return value
