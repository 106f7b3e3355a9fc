"""Patron blocks: what a block is keyed by, how long it may last, and whether a patron is blocked now.

A librarian ends a chat and blocks its patron (routing.services.blocks); the block covers the whole
consortium (never another one) until it expires or a coordinator lifts it. It is keyed by what
identifies the patron, strongest first:

- the **device**: a random id the patron's browser keeps in localStorage and sends with a chat start
  (docs/protocol.md, "device"); the chat keeps its hash (`Chat.patron_device`);
- the **phone**, for a chat that came by text (docs/sms.md);
- the **address** (IPv4, or the IPv6 /64, as consortium.clients counts clients), only when the librarian
  asks for it and only for a day at most: a library's public computers share one address, and the next
  patron at that computer must not be refused for days.

Every key is kept as a keyed hash (HMAC with the site's secret), never as the id, number or address:
a copy of the table names nobody. Expiry is a comparison with the time asked about (`now`), so a
block ends at its time with nothing to run, and tests pass the clock in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from consortium.clients import client_key
from routing.models import PatronBlock

# The lengths a librarian may choose (hours); 24 is the default. Coordinators may choose longer, up
# to 30 days, when blocking or by extending a block later (coordination.views.blocks).
LIBRARIAN_HOURS = (1, 4, 24)
COORDINATOR_HOURS = (1, 4, 24, 72, 168, 720)
DEFAULT_HOURS = 24
MAX_DAYS = 30
ADDRESS_MAX = timedelta(hours=24)  # an address is shared (public computers, campuses): a day at most
MAX_REASON = 500
DEVICE_MAX_LEN = 64  # the id the browser sends: 48 hex digits today


def key_hash(kind: str, value: str) -> str:
    """The stored form of a key: HMAC-SHA256 under the site's secret, separate per kind."""
    return hmac.new(settings.SECRET_KEY.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def device_hash(device: str) -> str:
    return key_hash("device", device.strip()) if device and device.strip() else ""


def phone_hash(phone: str) -> str:
    return key_hash("phone", phone.strip()) if phone and phone.strip() else ""


def address_hash(address: str | None) -> str:
    """The address's key: the IPv4 address, or its IPv6 /64 (one household picks new addresses in it)."""
    return key_hash("address", client_key(address)) if address else ""


def address_hint(address: str) -> str:
    """The address as coordinators see it: the network, its last part hidden ("192.0.2.x", "2001:db8:1:2::/64")."""
    key = client_key(address)
    if ":" in key:
        return f"{key}/64"
    head, _, _ = key.rpartition(".")
    return f"{head}.x" if head else key


@dataclass(frozen=True)
class Keys:
    """What identifies the patron asking now: each a hash, "" when unknown."""

    device: str = ""
    phone: str = ""
    address: str = ""

    def __bool__(self) -> bool:
        return bool(self.device or self.phone or self.address)


def active_q(now: datetime) -> Q:
    """Blocks in force at `now`: not lifted, not expired."""
    return Q(lifted_at__isnull=True, expires_at__gt=now)


def block_find(consortium_id: int, keys: Keys, now: datetime) -> PatronBlock | None:
    """The block in force at `now` in this consortium that matches any of the keys, or None."""
    if not keys:
        return None
    match = Q(pk__in=[])
    if keys.device:
        match |= Q(device_hash=keys.device)
    if keys.phone:
        match |= Q(phone_hash=keys.phone)
    if keys.address:
        match |= Q(address_hash=keys.address, address_until__gt=now)
    return (PatronBlock.objects.filter(active_q(now), match, consortium_id=consortium_id)
            .order_by("-expires_at").first())


def status_of(block: PatronBlock, now: datetime) -> str:
    """"active", "lifted" or "expired": how a block reads at `now`."""
    if block.lifted_at is not None:
        return "lifted"
    return "active" if block.expires_at > now else "expired"


def longest(*, coordinator: bool, created_at: datetime) -> datetime:
    """The furthest a block made at `created_at` may run: librarians a day, coordinators 30 days."""
    return created_at + (timedelta(days=MAX_DAYS) if coordinator else timedelta(hours=max(LIBRARIAN_HOURS)))
