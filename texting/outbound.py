"""Texts out: recorded in the transaction that decides to send them, sent by a worker after commit.

Each text is a row (`OutboundText`) sent at most once: the worker takes the row's lock, sends only a
row still `queued`, and writes `sent` in the same transaction. A task handed out again (its worker
died) finds the row sent. A librarian message has one row by constraint (its idempotency key), so a
retried `message` frame never makes a second text. As with mail (routing.tasks.send_once), only a
worker killed between the provider taking the text and the commit, or a provider that took a text
and then timed out, can send a text twice: never lost, and doubled only then.

Retries: a timeout, no connection, 5xx or 429 is tried again after TWILIO_RETRY_DELAYS (3 s, then
15 s, 60 s, 180 s, 360 s: six tries over about ten minutes); then, or at once on any other refusal,
the text is `failed` and the console shows the line as not delivered.

Limits: at most PER_PHONE_PER_MINUTE texts a minute to one phone and PER_CONSORTIUM_PER_MINUTE from
one consortium; past them a text waits its turn (tried again shortly, not counted as a try): answered
no faster, never dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from routing import events
from routing.models import Chat, ChatFile, Message
from routing.services.chats import SMS_MAX_BODY
from texting import provider
from texting.models import OutboundText, SmsChat, SmsPatron
from texting.numbers import masked

logger = logging.getLogger("texting")

MAX_BODY = SMS_MAX_BODY  # Twilio's limit for one message (it splits it into segments on the way)
PER_PHONE_PER_MINUTE = 10
PER_CONSORTIUM_PER_MINUTE = 200
WAIT_FOR_LIMIT = 6  # seconds before a text held back by a limit is looked at again
FILE_LINK_SALT = "texting.file-link"


def text_queue(patron: SmsPatron, *, kind: str, body: str, from_number: str, now: datetime,
               chat: Chat | None = None, message: Message | None = None) -> OutboundText:
    """Record a text to send and send it after commit. Texts of our own making are cut to the limit;
    a librarian's longer message is refused before it gets here (the console says so)."""
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY - 1] + "…"
    text = OutboundText.objects.create(consortium_id=patron.consortium_id, patron=patron, chat=chat, message=message,
                                       kind=kind, from_number=from_number, body=body, created_at=now)
    text_id = text.pk
    transaction.on_commit(lambda: _enqueue(text_id))
    return text


def _enqueue(text_id: str) -> None:
    from texting.tasks import send_text  # the task module imports this one

    send_text.delay(text_id)


def librarian_message_sent(message: Message) -> None:
    """A librarian wrote in an SMS chat: text it (a file as a link) from the number the patron texted.

    Called by routing.services.chats.message_post inside or after the message's transaction."""
    if message.internal or message.sender != Message.Sender.LIBRARIAN:
        return
    link = SmsChat.objects.select_related("patron").filter(chat_id=message.chat_id).first()
    if link is None:
        return
    body = message.body
    if message.file_id:
        stored = ChatFile.objects.filter(pk=message.file_id).first()
        if stored is not None:
            body = f"{stored.name}: {file_link(stored)}"
    with transaction.atomic():
        if OutboundText.objects.filter(message=message).exists():
            return
        text_queue(link.patron, kind=OutboundText.Kind.REPLY, body=body, from_number=link.number,
                   now=message.at, chat=chat_id_only(message.chat_id), message=message)


def chat_id_only(chat_id: str) -> Chat:
    """A Chat to point a foreign key at, without reading the row."""
    return Chat(pk=chat_id)


def file_link(stored: ChatFile) -> str:
    """An address that opens the file without the chat's token, valid as long as the chat is kept
    (the scrub deletes the file with the chat's other personal data: the link then finds nothing)."""
    token = signing.dumps({"f": stored.pk, "c": stored.chat_id}, salt=FILE_LINK_SALT, compress=True)
    return settings.PUBLIC_URL + reverse("sms-file", kwargs={"token": token})


def file_from_link(token: str) -> ChatFile | None:
    try:
        found = signing.loads(token, salt=FILE_LINK_SALT)
    except signing.BadSignature:
        return None
    return (ChatFile.objects.select_related("chat").filter(pk=found.get("f"), chat_id=found.get("c"),
                                                           chat__scrubbed=False).first())


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: int | None = None  # seconds before another try; None: done (sent, failed or suppressed)


def deliver(text_id: str, now: datetime | None = None) -> Outcome:
    """One try at sending a text (the Celery task calls it; see the module's docstring)."""
    now = now or timezone.now()
    with transaction.atomic():
        text = (OutboundText.objects.select_for_update(of=("self",)).select_related("patron")
                .filter(pk=text_id).first())
        if text is None or text.status != OutboundText.Status.QUEUED:
            return Outcome(text.status if text else "gone")
        if text.patron.opted_out_at is not None:
            text.status = OutboundText.Status.SUPPRESSED
            text.save(update_fields=["status"])
            _announce(text, "not_delivered", "the patron's phone has opted out (STOP)")
            return Outcome(text.status)
        if _over_limit(text, now):
            return Outcome(text.status, retry_in=WAIT_FOR_LIMIT)
        text.tries += 1
        try:
            sent = provider.send(to=text.patron.phone, from_=text.from_number, body=text.body)
        except provider.SendFailed as e:
            text.last_error = str(e)[:200]
            delays = settings.TWILIO_RETRY_DELAYS
            if e.retry and text.tries <= len(delays):
                text.save(update_fields=["tries", "last_error"])
                logger.warning("text to %s not sent (try %d): %s", masked(text.patron.phone), text.tries, e)
                return Outcome(text.status, retry_in=delays[text.tries - 1])
            text.status = OutboundText.Status.FAILED
            text.save(update_fields=["tries", "last_error", "status"])
            logger.error("text to %s failed after %d tries: %s", masked(text.patron.phone), text.tries, e)
            _announce(text, "not_delivered", text.last_error)
            return Outcome(text.status)
        text.status = OutboundText.Status.SENT
        text.sent_at = timezone.now()
        text.provider_sid = sent.sid[:64]
        text.save(update_fields=["tries", "status", "sent_at", "provider_sid", "last_error"])
        _announce(text, "delivered", "")
        return Outcome(text.status)


def _over_limit(text: OutboundText, now: datetime) -> bool:
    since = now - timedelta(minutes=1)
    sent = OutboundText.objects.filter(status=OutboundText.Status.SENT, sent_at__gte=since)
    if sent.filter(patron_id=text.patron_id).count() >= PER_PHONE_PER_MINUTE:
        return True
    return sent.filter(consortium_id=text.consortium_id).count() >= PER_CONSORTIUM_PER_MINUTE


def _announce(text: OutboundText, status: str, detail: str) -> None:
    """Tell the consoles in the chat whether a librarian's line reached the phone."""
    if text.chat_id is None or text.message_id is None:
        return
    seq = Message.objects.filter(pk=text.message_id).values_list("seq", flat=True).first()
    events.to_chat(text.chat_id, {"type": "delivery", "chat": text.chat_id, "seq": seq, "status": status,
                                  "detail": detail or None})
