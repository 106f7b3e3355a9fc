"""Offers: exactly one librarian wins a chat when several accept; declining moves it on."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.queries import KeyedValues
from libraries.models import StaffProfile
from routing import events, frames
from routing.models import Chat, ChatState, Offer
from routing.plan import plan_from_json
from routing.services.common import (
    ServiceError,
    chat_lock,
    chat_state_publish,
    in_patron_language,
    presence_lock,
    system_message_post,
    trace,
)
from routing.services.handbacks import handbacks_announce
from routing.services.route import chat_route_locked, offers_reroute


def _refuse_unless_queued(librarian: StaffProfile, consortium_id: int | None, state: str | None) -> None:
    if state is None or consortium_id != librarian.library.consortium_id:
        raise ServiceError("not_offered", gettext_lazy("that chat was not offered to you"))
    if state == ChatState.ACTIVE:
        raise ServiceError("taken", gettext_lazy("another librarian accepted this chat"))
    if state != ChatState.QUEUED:
        raise ServiceError("ended", gettext_lazy("this chat is over"))


def chat_accept_precheck(librarian: StaffProfile, chat_id: str) -> None:
    """Refuse, without a lock, an accept that cannot win: the chat already taken, or over.

    An offer goes to every librarian a step names and most accept: all but one lose. A chat found
    active or ended here was so when the accept arrived, the answer chat_accept would give under its
    locks a moment later; a loser's accept so costs one narrow read instead of two row locks."""
    consortium_id, state = _CHAT_STATE(chat_id) or (None, None)
    _refuse_unless_queued(librarian, consortium_id, state)


_CHAT_STATE = KeyedValues(lambda chat_id: Chat.objects.filter(pk=chat_id).values_list("consortium_id", "state"))


def chat_accept(librarian: StaffProfile, chat_id: str, now: datetime) -> Chat:
    """Exactly one librarian wins a chat, however many accept at once on however many processes."""
    with transaction.atomic():
        presence = presence_lock(librarian)  # serializes this librarian's accepts: capacity holds
        chat = chat_lock(chat_id)
        _refuse_unless_queued(librarian, chat.consortium_id if chat else None, chat.state if chat else None)
        assert chat is not None  # refused above
        offer = Offer.objects.filter(chat=chat, librarian=librarian, status=Offer.Status.OPEN).first()
        if offer is None:
            raise ServiceError("not_offered", gettext_lazy("that chat is not offered to you now"))
        active = Chat.objects.filter(librarian=librarian, state=ChatState.ACTIVE).count()
        capacity = librarian.capacity if librarian.capacity is not None else chat.consortium.librarian_capacity
        if active >= capacity:
            raise ServiceError("at_capacity", format_lazy(
                gettext_lazy("you already have {active} chats (your limit is {capacity})"),
                active=active, capacity=capacity))
        plan = plan_from_json(chat.plan)
        chat.state = ChatState.ACTIVE
        chat.librarian = librarian
        chat.accepted_at = now
        chat.accepted_step_index = chat.step_index
        chat.answered_step = plan[chat.step_index].name if 0 <= chat.step_index < len(plan) else ""
        if chat.answered_by_id is None:
            chat.answered_by = librarian
            chat.first_accepted_at = now
        idle = chat.consortium.sms_idle if chat.channel == "sms" else chat.consortium.idle_timeout  # docs/sms.md
        chat.deadline = now + timedelta(seconds=idle)
        chat.last_activity_at = now
        chat.version += 1
        chat.save()
        offer.status = Offer.Status.ACCEPTED
        offer.closed_at = now
        offer.save(update_fields=["status", "closed_at"])
        events.to_librarians([(other, frames.withdrawn_frame(chat.pk, "accepted")) for other in Offer.objects.filter(
            chat=chat, status=Offer.Status.OPEN).values_list("librarian_id", flat=True)])
        Offer.objects.filter(chat=chat, status=Offer.Status.OPEN).update(
            status=Offer.Status.WITHDRAWN, closed_at=now, reason="accepted")
        presence.idle_since = now
        presence.save(update_fields=["idle_since"])
        trace(chat, "accepted", now, librarian=librarian.pk, username=librarian.user.username,
              library=librarian.library.slug, step=chat.answered_step, queue=offer.queue,
              waited=int((now - chat.arrived_at).total_seconds()))
        events.to_librarian(librarian.pk, frames.assigned_frame(chat), join_chat=chat.pk)
        with in_patron_language(chat):
            joined = _("%(name)s, %(library)s, joined the chat.") % {
                "name": librarian.display_name, "library": librarian.library.name}
        system_message_post(chat, joined, now)
        chat_state_publish(chat)
        full = active + 1 >= capacity
    if full:
        offers_reroute([librarian.pk], now)
        # Full, they no longer count for the way home: holders of their library's patrons are told.
        handbacks_announce(librarian.library.consortium, librarian.library, now)
    return chat


def chat_decline(librarian: StaffProfile, chat_id: str, now: datetime) -> None:
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None:
            raise ServiceError("not_found", gettext_lazy("no such chat"))
        # Declined in the chat's current step (an offer made in an earlier one and still open is of this
        # one: routing.selectors.current_step_offers): not offered it again until the chat moves on.
        updated = Offer.objects.filter(chat=chat, librarian=librarian, status=Offer.Status.OPEN).update(
            status=Offer.Status.DECLINED, closed_at=now, reason="declined", step_serial=chat.step_serial)
        if not updated:
            raise ServiceError("not_offered", gettext_lazy("that chat is not offered to you"))
        trace(chat, "declined", now, librarian=librarian.pk, username=librarian.user.username)
        events.to_librarian(librarian.pk, frames.withdrawn_frame(chat.pk, "declined"))
        if chat.state == ChatState.QUEUED:
            chat_route_locked(chat, now)
