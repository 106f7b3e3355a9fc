"""Patron blocks, the writes (routing.blocks has the keys, the lengths and the read):

- `chat_end_and_block`: the librarian ends the chat they hold and blocks its patron, one transaction;
- `block_lift`, `block_extend`: a coordinator's, each kept in the block's history.

Lock order as everywhere (routing.services.common): the chat's row, then the block's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from libraries.models import StaffProfile
from routing import blocks
from routing.models import LIVE_STATES, Channel, PatronBlock
from routing.selectors import librarian_queues
from routing.services.common import Refused, chat_end_locked, chat_lock, trace
from routing.services.route import waiting_chats_route


def _is_coordinator(profile: StaffProfile) -> bool:
    return profile.role == StaffProfile.Role.COORDINATOR


def _audit(block: PatronBlock, action: str, at: datetime, by: StaffProfile | None, by_name: str,
           note: str = "") -> None:
    block.history = [*block.history, {"at": at.isoformat(), "action": action, "by": by.pk if by else None,
                                      "by_name": by_name, "expires_at": block.expires_at.isoformat(), "note": note}]


def _reason(reason: object) -> str:
    text = " ".join(str(reason or "").split())
    if not text:
        raise Refused("invalid", gettext_lazy("say why the patron is blocked"),
                      {"reason": [gettext_lazy("is required")]})
    if len(text) > blocks.MAX_REASON:
        raise Refused("invalid", gettext_lazy("the reason is too long"),
                      {"reason": [format_lazy(gettext_lazy("must be at most {most} characters"),
                                                   most=blocks.MAX_REASON)]})
    return text


def chat_end_and_block(profile: StaffProfile, chat_id: str, now: datetime, *, reason: object,
                       hours: object = blocks.DEFAULT_HOURS, address: bool = False) -> PatronBlock:
    """End the chat `profile` holds (if still live; an ended chat of theirs may be blocked after) and
    block its patron across the consortium for `hours`, in one transaction: both or neither. Keyed by
    the chat's device id, its phone for a text, and its address only when `address` is asked (for a
    day at most). A chat with no key, or whose patron is blocked already: refused."""
    text = _reason(reason)
    allowed = blocks.COORDINATOR_HOURS if _is_coordinator(profile) else blocks.LIBRARIAN_HOURS
    if not isinstance(hours, int) or isinstance(hours, bool) or hours not in allowed:
        raise Refused("invalid", gettext_lazy("that length is not offered"),
                      {"hours": [format_lazy(gettext_lazy("must be one of {values}"),
                                                  values=", ".join(str(h) for h in allowed))]})
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None or chat.librarian_id != profile.pk or chat.consortium_id != profile.library.consortium_id:
            raise Refused("not_found", gettext_lazy("you do not hold that chat"))
        if PatronBlock.objects.filter(blocks.active_q(now), chat=chat).exists():
            raise Refused("conflict", gettext_lazy("this chat's patron is blocked already"))
        hint: dict[str, str] = {}
        device = chat.patron_device
        if device:
            hint["device"] = f"…{device[-4:]}"
        phone = ""
        if chat.channel == Channel.SMS:
            from texting.models import SmsChat  # texting builds on routing: imported here
            from texting.numbers import masked

            sms = SmsChat.objects.select_related("patron").filter(chat=chat).first()
            if sms is not None:
                phone = blocks.phone_hash(sms.patron.phone)
                hint["phone"] = masked(sms.patron.phone)
        address_key = ""
        address_until = None
        expires = now + timedelta(hours=hours)
        if address and chat.patron_ip:
            address_key = blocks.address_hash(chat.patron_ip)
            address_until = min(expires, now + blocks.ADDRESS_MAX)
            hint["address"] = blocks.address_hint(chat.patron_ip)
        if not (device or phone or address_key):
            raise Refused("no_key", gettext_lazy(
                "this chat has nothing to block it by (no device id): block its address instead"),
                          {"address": [gettext_lazy("nothing else identifies this patron")]})
        live = chat.state in LIVE_STATES
        if live:
            chat_end_locked(chat, now, by="librarian", reason="librarian")
        block = PatronBlock(consortium_id=chat.consortium_id, device_hash=device, phone_hash=phone,
                            address_hash=address_key, address_until=address_until, hint=hint, reason=text,
                            created_by=profile, chat=chat, created_at=now, expires_at=expires)
        _audit(block, "created", now, profile, profile.display_name)
        block.save()
        trace(chat, "blocked", now, librarian=profile.pk, block=block.pk, keys=sorted(hint), hours=hours,
              expires_at=expires.isoformat())
    if live:
        waiting_chats_route(profile.consortium, now, set(librarian_queues(profile)))
    return block


def _locked(consortium_id: int, block_id: int) -> PatronBlock:
    block = PatronBlock.objects.select_for_update().filter(pk=block_id, consortium_id=consortium_id).first()
    if block is None:
        raise Refused("not_found", gettext_lazy("no such block"))
    return block


def block_lift(*, consortium_id: int, block_id: int, by: StaffProfile | None, by_name: str, note: str,
               now: datetime) -> PatronBlock:
    """Lift a block in force (a coordinator's): kept, marked lifted, the note in its history."""
    note = " ".join(note.split())[:blocks.MAX_REASON]
    with transaction.atomic():
        block = _locked(consortium_id, block_id)
        if blocks.status_of(block, now) != "active":
            raise Refused("not_active", gettext_lazy("this block is no longer in force"))
        block.lifted_at, block.lifted_by, block.lift_note = now, by, note
        _audit(block, "lifted", now, by, by_name, note)
        block.save(update_fields=["lifted_at", "lifted_by", "lift_note", "history"])
    return block


def block_extend(*, consortium_id: int, block_id: int, by: StaffProfile | None, by_name: str, until: datetime,
                 note: str, now: datetime) -> PatronBlock:
    """Move a block in force's end to `until`: later than now, at most 30 days after it was made. The
    address part keeps its own end (a day at most): only the device and the phone are held longer."""
    note = " ".join(note.split())[:blocks.MAX_REASON]
    with transaction.atomic():
        block = _locked(consortium_id, block_id)
        if block.lifted_at is not None:
            raise Refused("not_active", gettext_lazy("this block was lifted"))
        if block.expires_at <= now:  # an ended block is not brought back: a new one is made from a chat
            raise Refused("not_active", gettext_lazy("this block has ended"))
        if until <= now:
            raise Refused("invalid", gettext_lazy("the new end must be in the future"),
                          {"until": [gettext_lazy("must be after now")]})
        furthest = blocks.longest(coordinator=True, created_at=block.created_at)
        if until > furthest:
            raise Refused("invalid", format_lazy(gettext_lazy("a block lasts at most {days} days"),
                                                 days=blocks.MAX_DAYS),
                          {"until": [format_lazy(gettext_lazy("must be at most {until} UTC"),
                                                 until=f"{furthest:%Y-%m-%d %H:%M}")]})
        block.expires_at = until
        _audit(block, "extended", now, by, by_name, note)
        block.save(update_fields=["expires_at", "history"])
    return block
