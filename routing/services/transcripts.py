"""Transcript mail: a patron (or a librarian who may read the chat) asks for the chat's transcript by
email. Bounded, so that a chat token is not an open relay (issue 13.1, docs/security.md):

- at most MAILS_PER_CHAT mails per chat, to at most ADDRESSES_PER_CHAT distinct addresses (asking again
  for an address already mailed counts as a mail, not as an address);
- never once the chat is scrubbed (its patron's data is gone, and so is its token);
- per client address, `consortium.ratelimit.TRANSCRIPT_MAIL_CLIENT` (checked by the view).

The count is a row per mail asked for (`TranscriptMail`), written under the chat's row lock: two
processes asking at once for the third and fourth mail queue on the lock, and the second one sees
three rows. The mail itself is sent by the Celery task once per task id (routing.tasks.send_once).
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from routing.models import TranscriptMail
from routing.services.common import ServiceError, chat_lock

MAILS_PER_CHAT = 3
ADDRESSES_PER_CHAT = 2


class TranscriptRefused(ServiceError):
    """Past a per-chat bound (`reason` "limit_reached") or the chat is scrubbed ("scrubbed")."""


def transcript_mail_ask(*, chat_id: str, email: str, now: datetime) -> TranscriptMail:
    """Record one transcript mail to `email` and enqueue it after commit; raises TranscriptRefused."""
    from routing.tasks import mail_transcript  # tasks import services: keep the import graph one-way

    address = email.strip().lower()
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None:
            raise ServiceError("not_found", "no such chat")
        if chat.scrubbed:
            raise TranscriptRefused("scrubbed", _("this chat's record was cleared: its transcript is not mailed"))
        sent = list(TranscriptMail.objects.filter(chat=chat).values_list("email", flat=True))
        if len(sent) >= MAILS_PER_CHAT:
            raise TranscriptRefused("limit_reached", _("this chat's transcript was mailed %(count)d times already: "
                                                       "no more") % {"count": MAILS_PER_CHAT})
        if address not in sent and len(set(sent)) >= ADDRESSES_PER_CHAT:
            raise TranscriptRefused("limit_reached", _("this chat's transcript may go to at most %(count)d "
                                                       "addresses") % {"count": ADDRESSES_PER_CHAT})
        row = TranscriptMail.objects.create(chat=chat, email=address, asked_at=now)
        transaction.on_commit(lambda: mail_transcript.delay(chat.pk, email))
    return row
