"""Secrets handed out in addresses and requests, kept hashed: one way for every token of the service.

A patron's chat token (routing) and a librarian's calendar feed address (libraries.rota) are each
shown once, when made; the database keeps only their SHA-256, so a copy of it opens nothing. The
tokens are 24 random bytes, so a plain fast hash is enough: unlike a password, nobody can try
2^192 values (a salted slow hash protects guessable secrets, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def token_new() -> str:
    """A fresh secret, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256, 64 hex digits."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_hash_matches(stored_hash: str, token: object) -> bool:
    """Whether `token` is the secret whose hash is stored (in constant time; a non-text token never is)."""
    return isinstance(token, str) and bool(stored_hash) and hmac.compare_digest(stored_hash, token_hash(token))
