"""Screen and page sharing (routing.sharing): the librarian's request, the patron's consent or refusal,
the end, and a page pushed to the patron. Each is a row change under the chat's lock, a trace line
(who, when, how long: never what was shown), and frames after commit.

Who may do what is decided here and nowhere else: only the chat's librarian asks or pushes, only in an
active web chat; only the patron consents; either ends. A share of a kind is open at most once per
chat at a time. The relay of the signalling itself (offer, answer, ICE candidates, page addresses)
needs no row: the sockets carry it between the two sockets bound to the share
(routing.sockets.sharing).

Lock order, as for every service (routing.services.common): the chat's row first, then its shares.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy

from libraries.models import StaffProfile
from routing import events, frames, sharing
from routing.models import Chat, ChatState, Connection, Share
from routing.services.common import ServiceError, chat_lock, trace

OPEN_STATES = (Share.State.REQUESTED, Share.State.ACTIVE)
POLL_PREFIX = "poll."  # the long-poll transport's connections (routing.patron.polling.poller_name)


def ice_settings() -> sharing.IceSettings:
    return sharing.IceSettings(urls=sharing.ice_urls(settings.ICE_SERVERS), turn_secret=settings.TURN_SECRET,
                               credential_seconds=settings.TURN_CREDENTIAL_SECONDS,
                               relay_only=settings.SHARE_RELAY_ONLY)


def _held_chat(librarian: StaffProfile, chat_id: str) -> Chat:
    chat = chat_lock(chat_id)
    if chat is None or chat.librarian_id != librarian.pk or chat.state != ChatState.ACTIVE:
        raise ServiceError("not_found", gettext_lazy("you do not hold that chat"))
    if chat.channel != "web":
        raise ServiceError("invalid", gettext_lazy(
            "sharing needs the patron in a browser: this chat is a text conversation"))
    return chat


def share_request(librarian: StaffProfile, chat_id: str, kind: str, now: datetime) -> tuple[Share, dict[str, Any]]:
    """The librarian asks to share (`kind`: routing.sharing.KINDS). Returns the share and the ICE
    configuration for this librarian's browser; the patron's sockets get the request with theirs."""
    with transaction.atomic():
        chat = _held_chat(librarian, chat_id)
        sockets = Connection.objects.filter(chat=chat, kind=Connection.Kind.PATRON).exclude(
            process__id__startswith=POLL_PREFIX)
        if not sockets.exists():
            # The request travels the patron's socket: a patron who is away, or whose network blocks
            # WebSockets (the long-poll fallback), would never see it.
            raise ServiceError("invalid", gettext_lazy(
                "the patron's browser cannot receive a share request now (not connected, or on a network that "
                "blocks live connections): ask for a screenshot"))
        if Share.objects.filter(chat=chat, kind=kind, state__in=OPEN_STATES).exists():
            raise ServiceError("invalid", gettext_lazy(
                "a share of that kind is already open in this chat: stop it first"))
        share = Share.objects.create(chat=chat, kind=kind, librarian=librarian, requested_at=now)
        trace(chat, "share_requested", now, share=share.pk, share_kind=kind, librarian=librarian.pk)
        ice = sharing.ice_config(ice_settings(), str(share.pk), now)
        events.publish(events.chat_group(chat.pk), frames.share_request_frame(share, librarian, ice),
                       only_role="patron")
    return share, ice


def share_consent(chat_id: str, share_id: int, now: datetime, *, consent: bool, unsupported: bool = False) -> Share:
    """The patron's answer to a request: the share starts, or ends as refused (`unsupported`: not by the
    patron's choice, their browser cannot capture a screen, as on most phones)."""
    with transaction.atomic():
        chat = chat_lock(chat_id)
        share = Share.objects.select_for_update().filter(pk=share_id, chat_id=chat_id).first()
        if chat is None or share is None:
            raise ServiceError("not_found", gettext_lazy("no such share in this chat"))
        if share.state != Share.State.REQUESTED:
            raise ServiceError("invalid", gettext_lazy("that share was answered already, or has ended"))
        if consent and chat.state != ChatState.ACTIVE:
            raise ServiceError("invalid", gettext_lazy("the chat has ended"))
        if consent:
            share.state, share.started_at = Share.State.ACTIVE, now
            share.save(update_fields=["state", "started_at"])
            trace(chat, "share_started", now, share=share.pk, share_kind=share.kind,
                  waited=round((now - share.requested_at).total_seconds(), 1))
            events.publish(events.chat_group(chat.pk), frames.share_started_frame(share))
        else:
            _end(chat, share, now, by="patron", reason="unsupported" if unsupported else "refused")
    return share


def share_end(chat_id: str, share_id: int, now: datetime, *, by: str, reason: str = "stopped",
              librarian: StaffProfile | None = None) -> Share | None:
    """Stop a share (either side, or the server: `by`). Ending one that has ended already is no error
    (both sides may stop at once); None then. A librarian may end only the shares of a chat they hold."""
    with transaction.atomic():
        chat = chat_lock(chat_id)
        share = Share.objects.select_for_update().filter(pk=share_id, chat_id=chat_id).first()
        if chat is None or share is None or (librarian is not None and chat.librarian_id != librarian.pk):
            raise ServiceError("not_found", gettext_lazy("no such share in this chat"))
        if share.state not in OPEN_STATES:
            return None
        _end(chat, share, now, by=by, reason=reason)
    return share


def shares_end_for_chat(chat: Chat, now: datetime, *, reason: str = "chat_ended") -> None:
    """Every open share of a chat the caller holds locked ends (the chat ended, or changed hands)."""
    for share in Share.objects.select_for_update().filter(chat=chat, state__in=OPEN_STATES).order_by("pk"):
        _end(chat, share, now, by="server", reason=reason)


def shares_end_for_socket(share_ids: list[int], chat_ids: dict[int, str], now: datetime) -> None:
    """A socket bound to these media shares closed: each ends, since the browser that carried its
    signalling (and, for the sharer, the picture) is gone."""
    for share_id in share_ids:
        with contextlib.suppress(ServiceError):  # the chat or the share is gone: nothing left to end
            share_end(chat_ids[share_id], share_id, now, by="server", reason="disconnected")


def _end(chat: Chat, share: Share, now: datetime, *, by: str, reason: str) -> None:
    refused = reason in ("refused", "unsupported")
    share.state = Share.State.REFUSED if refused else Share.State.ENDED
    share.ended_at, share.ended_by, share.end_reason = now, by, reason
    share.save(update_fields=["state", "ended_at", "ended_by", "end_reason"])
    seconds = round((now - share.started_at).total_seconds(), 1) if share.started_at else 0.0
    trace(chat, "share_refused" if refused else "share_ended", now, share=share.pk, share_kind=share.kind, by=by,
          reason=reason, seconds=seconds)
    events.publish(events.chat_group(chat.pk), frames.share_ended_frame(share))


def page_push(librarian: StaffProfile, chat_id: str, url: str, title: str, now: datetime) -> None:
    """The librarian sends the patron a page as a card: its title, opened by the patron's click. The
    trace says a page was pushed, not which."""
    with transaction.atomic():
        chat = _held_chat(librarian, chat_id)
        trace(chat, "page_pushed", now, librarian=librarian.pk)
        events.publish(events.chat_group(chat.pk), frames.page_push_frame(chat.pk, url, title, librarian),
                       only_role="patron")
