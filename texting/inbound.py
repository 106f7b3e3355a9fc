"""What a text does (docs/sms.md, "Conversation").

`receive` is called by the webhook once the signature is checked. In one transaction, under the lock
of the phone's row (`SmsPatron`), so that two texts from one phone arriving together are taken one
after the other:

- the text is stored by its MessageSid, once (a provider retry finds it and does nothing);
- a keyword on its own (STOP..., START, HELP) opts the phone out or in, or answers `sms_help`;
- a text to a chat not yet ended continues it (a patron message with client_id = MessageSid);
- a text after an unstaffed one, while its follow-up is still new, is added to that follow-up;
- otherwise it starts a chat routed exactly as a web chat (home library from the number or the
  keyword, Spanish by keyword or detection); nobody to answer: one text with the hours and the ask
  page, and the question becomes a follow-up for the home library (or the consortium); a phone a
  librarian blocked (routing.blocks): no chat, and one neutral text an hour at most pointing to the
  ask page's question form.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from consortium.models import Consortium
from libraries.hours import is_open, next_change
from libraries.models import Library, Queue
from routing.models import LIVE_STATES, Channel, Chat, ChatState, Message, Ticket
from routing.services import chats as chat_services
from routing.services.common import ServiceError, chat_end_locked, chat_lock
from routing.services.followups import followup_create
from texting import language
from texting.models import InboundText, OutboundText, SmsChat, SmsPatron
from texting.numbers import Destination, help_text, keyword_library, masked
from texting.outbound import text_queue

logger = logging.getLogger("texting")

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
MAX_QUESTION = 4000  # a long text is still kept whole in the message; the chat's question is its start


@dataclass(frozen=True)
class Text:
    """A text as Twilio's Messaging webhook posts it."""

    sid: str
    phone: str  # From
    number: str  # To
    body: str
    media: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Received:
    kind: str  # an InboundText.Kind, or "duplicate"
    chat_id: str | None = None


def receive(text: Text, destination: Destination, now: datetime) -> Received:
    consortium = destination.consortium
    with transaction.atomic():
        patron, _ = SmsPatron.objects.get_or_create(consortium=consortium, phone=text.phone,
                                                    defaults={"created_at": now, "last_text_at": now})
        patron = SmsPatron.objects.select_for_update().get(pk=patron.pk)
        if InboundText.objects.filter(message_sid=text.sid).exists():
            return Received("duplicate")
        inbound = InboundText.objects.create(message_sid=text.sid, patron=patron, number=text.number,
                                             body=text.body, media=text.media, received_at=now)
        patron.last_text_at = now
        patron.save(update_fields=["last_text_at"])
        kind, chat_id = _handle(text, destination, patron, now)
        inbound.kind = kind
        inbound.chat_id = chat_id
        inbound.save(update_fields=["kind", "chat"])
        if text.media and kind in (InboundText.Kind.QUESTION, InboundText.Kind.MESSAGE, InboundText.Kind.FOLLOWUP):
            inbound_id = inbound.pk
            transaction.on_commit(lambda: _take_media(inbound_id))
    logger.info("text from %s to %s: %s", masked(text.phone), text.number, kind)
    return Received(kind, chat_id)


def _handle(text: Text, destination: Destination, patron: SmsPatron, now: datetime) -> tuple[str, str | None]:
    word = text.body.strip().upper()
    if word in STOP_WORDS:
        return InboundText.Kind.STOP, _opt_out(patron, now)
    if word in START_WORDS:
        patron.opted_out_at = None
        patron.save(update_fields=["opted_out_at"])
        return InboundText.Kind.START, None
    if word in HELP_WORDS:
        text_queue(patron, kind=OutboundText.Kind.HELP, body=help_text(destination.consortium),
                   from_number=text.number, now=now)
        return InboundText.Kind.HELP, None

    body = _with_media(text)
    open_chat = _open_chat(patron)
    if open_chat is not None:
        try:
            chat_services.message_post(open_chat, sender=Message.Sender.PATRON, body=body, client_id=text.sid,
                                       now=now)
            return InboundText.Kind.MESSAGE, open_chat
        except ServiceError:
            pass  # it ended a moment ago (the idle timer): the text starts a new chat instead
    ticket = _open_followup(patron, now)
    if ticket is not None:
        ticket.question = f"{ticket.question}\n\n{body}"
        ticket.save(update_fields=["question"])
        return InboundText.Kind.FOLLOWUP, ticket.chat_id
    chat_id = _start(text, body, destination, patron, now)
    return (InboundText.Kind.QUESTION, chat_id) if chat_id else (InboundText.Kind.BLOCKED, None)


def _take_media(inbound_id: int) -> None:
    from texting.tasks import take_media  # the task module imports this one's neighbours

    take_media.delay(inbound_id)


def _with_media(text: Text) -> str:
    """The words of a text; a text of media alone still says something (its files follow: texting.media)."""
    if text.body.strip() or not text.media:
        return text.body
    return f"({len(text.media)} file(s) sent by text)"


def _open_chat(patron: SmsPatron) -> str | None:
    return (SmsChat.objects.filter(patron=patron, chat__state__in=LIVE_STATES)
            .order_by("-chat__created_at").values_list("chat_id", flat=True).first())


def _open_followup(patron: SmsPatron, now: datetime) -> Ticket | None:
    """The follow-up an unstaffed text became, while still new and recent: more texts add to it
    rather than each making a follow-up (and an automatic reply) of its own."""
    since = now - timedelta(seconds=patron.consortium.sms_idle)
    return (Ticket.objects.select_for_update().filter(
        chat__sms__patron=patron, status=Ticket.Status.NEW, source="sms", created_at__gte=since)
        .order_by("-created_at").first())


def _start(text: Text, body: str, destination: Destination, patron: SmsPatron, now: datetime) -> str | None:
    """The new chat's id; None when the phone is blocked (answered with one neutral text)."""
    consortium = destination.consortium
    home: Library | None = destination.library
    question = body
    if home is None:
        home, question = keyword_library(consortium, question)
    spanish, question = language.spanish_keyword(question)
    lang = "es" if spanish or language.is_spanish(question) else ""
    question = question or body  # a keyword alone: keep what was sent
    try:
        chat, _token = chat_services.chat_start(
            consortium=consortium, question=question[:MAX_QUESTION], library_slug=home.slug if home else None,
            language=lang, name=masked(text.phone), now=now, channel=Channel.SMS, phone=text.phone)
    except ServiceError as e:
        if e.reason != "blocked":
            raise
        _blocked(patron, text.number, consortium, home, spanish=lang == "es", now=now)
        return None
    SmsChat.objects.create(chat=chat, patron=patron, number=text.number)
    # The first message is the question; the provider's id goes on it so a retry is still seen.
    Message.objects.filter(chat=chat, seq=1).update(client_id=text.sid)
    if chat.state == ChatState.UNSTAFFED:
        _unstaffed(chat, patron, text.number, consortium, now)
    return chat.pk


def _unstaffed(chat: Chat, patron: SmsPatron, number: str, consortium: Consortium, now: datetime) -> None:
    followup_create(consortium=consortium, library=chat.home_library, chat=chat, question=chat.question,
                    email="", name=chat.patron_name, source="sms", now=now, mail_patron=False)
    text_queue(patron, kind=OutboundText.Kind.UNSTAFFED, body=unstaffed_text(chat, consortium, now),
               from_number=number, now=now, chat=chat)


# A blocked phone that keeps texting is answered once in this long, not at every text.
BLOCKED_REPLY_EVERY = timedelta(hours=1)


def _blocked(patron: SmsPatron, number: str, consortium: Consortium, home: Library | None, *, spanish: bool,
             now: datetime) -> None:
    """Chat by text is refused (a block, routing.blocks); the ask page's question form is offered, in words
    that accuse nobody. Nothing of the text becomes a chat."""
    if OutboundText.objects.filter(patron=patron, kind=OutboundText.Kind.BLOCKED,
                                   created_at__gt=now - BLOCKED_REPLY_EVERY).exists():
        return
    ask = settings.PUBLIC_URL + (reverse("ask-library", args=[consortium.slug, home.slug])
                                 if home else reverse("ask", args=[consortium.slug]))
    who = home.name if home else consortium.name
    body = (f"{who}: el chat por mensaje de texto no está disponible ahora. Puede dejar su pregunta en {ask} "
            "y le responderemos por correo electrónico." if spanish else
            f"{who}: chat by text is not available right now. You can leave your question at {ask} "
            "and a librarian will answer by email.")
    text_queue(patron, kind=OutboundText.Kind.BLOCKED, body=body, from_number=number, now=now)


def unstaffed_text(chat: Chat, consortium: Consortium, now: datetime) -> str:
    spanish = chat.language == "es"
    opens = _next_opening(chat, now)
    ask = settings.PUBLIC_URL + (reverse("ask-library", args=[consortium.slug, chat.home_library.slug])
                                 if chat.home_library else reverse("ask", args=[consortium.slug]))
    who = chat.home_library.name if chat.home_library else consortium.name
    if spanish:
        when = f" Abrimos de nuevo {opens}." if opens else ""
        return (f"{who}: no hay nadie para responder ahora.{when} Le responderemos por mensaje de texto. "
                f"También puede preguntar en {ask}")
    when = f" We open again {opens}." if opens else ""
    return f"{who}: nobody can answer right now.{when} A librarian will text you back. You can also ask at {ask}"


def _next_opening(chat: Chat, now: datetime) -> str:
    """The soonest a queue of the chat's plan opens, in that queue's time zone: "Mon 09:00 (EST)"."""
    slugs = {slug for step in chat.plan for slug in step.get("queues", [])}
    best: tuple[datetime, Queue] | None = None
    for queue in Queue.objects.filter(consortium_id=chat.consortium_id, slug__in=slugs, is_active=True):
        if is_open(queue, now):
            continue  # open but nobody there: no time to promise
        at = next_change(queue, now)
        if at is not None and (best is None or at < best[0]):
            best = (at, queue)
    if best is None:
        return ""
    local = best[0].astimezone(ZoneInfo(best[1].timezone))
    return local.strftime("%a %H:%M (%Z)")


def _opt_out(patron: SmsPatron, now: datetime) -> str | None:
    """STOP: no more texts to this phone from this consortium, and its open chat ends (opted_out)."""
    if patron.opted_out_at is None:
        patron.opted_out_at = now
        patron.save(update_fields=["opted_out_at"])
    chat_id = _open_chat(patron)
    if chat_id is None:
        return None
    chat = chat_lock(chat_id)
    if chat is not None and chat.state in LIVE_STATES:
        freed = chat.librarian
        chat_end_locked(chat, now, by="patron", reason="opted_out")
        if freed is not None:
            from routing.selectors import librarian_queues
            from routing.services.route import waiting_chats_route

            holder = freed
            transaction.on_commit(lambda: waiting_chats_route(holder.consortium, now,
                                                              set(librarian_queues(holder))))
    return chat_id

