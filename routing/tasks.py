"""Celery tasks: thin wrappers that fetch a row and send mail. Enqueued after commit.

Every task is acknowledged late (settings: CELERY_TASK_ACKS_LATE, CELERY_TASK_REJECT_ON_WORKER_LOST):
a worker killed in the middle of one leaves it to be run again. So that a run again does not mail
the patron twice, each mail is sent once per task id (`send_once`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from routing.models import Chat, SentMail, Ticket

SENT_MAIL_KEPT = timedelta(days=30)


def send_once(key: str | None, **mail: Any) -> bool:
    """send_mail, at most once per `key` (the Celery task id, the same each time the broker hands the task out).

    The key's row is written in the transaction around the sending: a run again after the worker
    died finds it and sends nothing, and a run alongside (a task handed out again while the first
    still runs) waits on the row until the first commits, then finds it. Only a worker killed
    between the mail server taking the mail and the commit, a few milliseconds, sends it twice;
    killed earlier, the mail is sent by the run again: never lost.
    """
    if not key:  # called directly, not as a task
        send_mail(**mail)
        return True
    with transaction.atomic():
        _, created = SentMail.objects.get_or_create(key=key, defaults={"sent_at": timezone.now()})
        if not created:
            return False
        send_mail(**mail)
    return True


@shared_task(bind=True, acks_late=True)
def mail_ticket_created(self: Any, ticket_id: str) -> None:
    ticket = Ticket.objects.select_related("library", "consortium").filter(pk=ticket_id).first()
    if ticket is None or not ticket.patron_email:
        return
    who = ticket.library.name if ticket.library else ticket.consortium.name
    send_once(
        self.request.id,
        subject=f"{ticket.consortium.name}: we have your question",
        message=(f"Hello{(' ' + ticket.patron_name) if ticket.patron_name else ''},\n\n"
                 f"{who} has your question and will answer by email.\n\nYour question:\n{ticket.question}\n\n"
                 f"Reference: {ticket.pk}\n\nThis address was given with a question left on {ticket.consortium.name}'s "
                 f"chat page. If it was not you, ignore this mail.\n"),
        from_email=None,
        recipient_list=[ticket.patron_email],
    )


@shared_task(bind=True, acks_late=True)
def mail_ticket_answer(self: Any, ticket_id: str) -> None:
    ticket = Ticket.objects.select_related("consortium").filter(pk=ticket_id).first()
    if ticket is None or not ticket.patron_email or not ticket.answer:
        return
    send_once(
        self.request.id,
        subject=f"{ticket.consortium.name}: an answer to your question",
        message=f"Your question:\n{ticket.question}\n\nOur answer:\n{ticket.answer}\n\nReference: {ticket.pk}\n",
        from_email=None,
        recipient_list=[ticket.patron_email],
    )


@shared_task(bind=True, acks_late=True)
def mail_transcript(self: Any, chat_id: str, email: str) -> None:
    from routing.services.followups import transcript_text
    from routing.services.transcripts import MAILS_PER_CHAT

    chat = Chat.objects.select_related("consortium").filter(pk=chat_id).first()
    if chat is None or chat.scrubbed:  # scrubbed (or deleted) since it was asked for: nothing to send
        return
    name = chat.consortium.name
    # Whoever asked may have typed any address: the mail says who sent it and why, and the subject is
    # fixed text, so nothing a patron wrote reaches the subject line (issue 13.1).
    send_once(
        self.request.id,
        subject=f"{name}: your chat transcript",
        message=(f"You asked for the transcript of your chat with {name} (started {chat.created_at:%Y-%m-%d}); "
                 f"it is below.\nIt was asked for on {name}'s chat page by someone in that chat. If you did not "
                 f"ask for it, ignore this mail: a chat's transcript is mailed at most {MAILS_PER_CHAT} times, "
                 f"and nothing else will follow.\n\n" + transcript_text(chat, for_patron=True) + "\n"),
        from_email=None,
        recipient_list=[email],
    )


@shared_task(acks_late=True)
def chats_scrub_expired() -> int:
    """Nightly, from Celery beat: chats past their retention lose the patron's personal data."""
    from routing.privacy import chats_scrub_expired as scrub

    return scrub(timezone.now())


@shared_task(acks_late=True)
def sent_mail_prune() -> int:
    """Nightly, from Celery beat: a task is handed out again within minutes, so a month of keys is plenty."""
    deleted, _ = SentMail.objects.filter(sent_at__lt=timezone.now() - SENT_MAIL_KEPT).delete()
    return deleted
