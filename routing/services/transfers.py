"""Passing an active chat on to a queue or to a present librarian."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from libraries.models import Queue, StaffProfile
from routing import events, frames
from routing.models import Chat, ChatState, Offer
from routing.plan import plan_to_json, transfer_plan
from routing.selectors import librarian_queues, situation_for
from routing.services.common import (
    ServiceError,
    chat_lock,
    chat_state_publish,
    in_patron_language,
    system_message_post,
    trace,
)
from routing.services.route import chat_route_locked, waiting_chats_route
from routing.services.shares import shares_end_for_chat


def chat_transfer(librarian: StaffProfile, chat_id: str, now: datetime, *, queue: str | None = None,
                  to_librarian: str | None = None, note: str = "", handback: bool = False) -> Chat:
    """Move an active chat to a queue or a present librarian; refused whole, or done whole.
    `handback`: the way home (routing.services.handbacks), traced as such for the statistics."""
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None or chat.librarian_id != librarian.pk or chat.state != ChatState.ACTIVE:
            raise ServiceError("not_found", gettext_lazy("you do not hold that chat"))
        situation = situation_for(chat.consortium, now)
        target_id: int | None = None
        if queue is not None:
            target = Queue.objects.filter(consortium=chat.consortium, slug=queue, is_active=True).first()
            if target is None:
                raise ServiceError("not_found", format_lazy(gettext_lazy("no queue {queue}"), queue=repr(queue)))
            current = Offer.objects.filter(chat=chat, status=Offer.Status.ACCEPTED).order_by("-closed_at").first()
            if current is not None and current.queue == queue:
                raise ServiceError("same_queue", gettext_lazy("the chat is already in that queue"))
            if queue not in situation.open_queues:
                raise ServiceError("closed", format_lazy(gettext_lazy("{name} is closed now"), name=target.name))
            others = [lib for lib in situation.present.get(queue, ()) if lib.id != librarian.pk]
            if not others:
                raise ServiceError("nobody", format_lazy(gettext_lazy("nobody is present in {name}"),
                                                         name=target.name))
            description = target.name
        else:
            other = StaffProfile.objects.filter(user__username=to_librarian, is_active=True,
                                                library__consortium=chat.consortium).first()
            if other is None:
                raise ServiceError("not_found", format_lazy(gettext_lazy("no librarian {name}"),
                                                            name=repr(to_librarian)))
            if other.pk == librarian.pk:
                raise ServiceError("same_queue", gettext_lazy("you already hold this chat"))
            present_ids = {lib.id for libs in situation.present.values() for lib in libs}
            if other.pk not in present_ids:
                raise ServiceError("nobody", format_lazy(gettext_lazy("{name} is not present"),
                                                         name=other.display_name))
            target_id = other.pk
            description = f"{other.display_name} ({other.library.name})"
        chat.plan = plan_to_json(transfer_plan(queue, target_id))
        chat.transfer_note = note
        chat.accepted_step_index = 0
        trace(chat, "transferred", now, librarian=librarian.pk, to_queue=queue, to_librarian=to_librarian,
              note=bool(note))
        if handback:
            trace(chat, "handed_back", now, librarian=librarian.pk, library=queue)
        shares_end_for_chat(chat, now, reason="transferred")  # the next librarian asks again if need be
        events.to_librarian(librarian.pk, frames.unassigned_frame(chat.pk, "transferred"),
                            leave_chat=chat.pk)
        with in_patron_language(chat):
            moving = _("You are being transferred to %(whom)s. Please stay here.") % {"whom": description}
        system_message_post(chat, moving, now)
        chat.state = ChatState.QUEUED
        chat.librarian = None
        chat.second_librarian = None  # a mentor who joined leaves with the librarian (routing.services.mentoring)
        chat.step_index = 0
        chat.step_serial += 1
        chat.step_entered_at = now
        chat.version += 1
        chat.save()
        # The librarian who passed the chat on is not offered it back in its new step.
        Offer.objects.create(chat=chat, librarian=librarian, step_serial=chat.step_serial, step="transfer",
                             queue=queue or "", mode="broadcast", created_at=now, status=Offer.Status.DECLINED,
                             closed_at=now, reason="transferred")
        chat_route_locked(chat, now, situation)
        chat_state_publish(chat)
    waiting_chats_route(librarian.consortium, now, set(librarian_queues(librarian)))
    return chat
