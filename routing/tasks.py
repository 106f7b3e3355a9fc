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
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from libraries.models import LibraryPartner, StaffProfile
from routing import followup_clock
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
    by = f" by {_due_text(ticket)}" if ticket.due_at else ""
    send_once(
        self.request.id,
        subject=f"{ticket.consortium.name}: we have your question",
        message=(f"Hello{(' ' + ticket.patron_name) if ticket.patron_name else ''},\n\n"
                 f"{who} has your question and will answer by email{by}.\n\nYour question:\n{ticket.question}\n\n"
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


def _due_text(ticket: Ticket) -> str:
    """The due time where the library is (or the consortium), as a patron reads it."""
    from zoneinfo import ZoneInfo

    assert ticket.due_at is not None
    zone = ZoneInfo(ticket.library.timezone if ticket.library else ticket.consortium.timezone)
    return f"{ticket.due_at.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})"


@shared_task(bind=True, acks_late=True)
def mail_ticket_on_its_way(self: Any, ticket_id: str) -> None:
    """The first claim of a follow-up: the patron is told that a librarian is working on the answer,
    in the chat's language when it came from a chat."""
    ticket = (Ticket.objects.select_related("library", "consortium", "chat", "claimed_by__library")
              .filter(pk=ticket_id).first())
    if ticket is None or not ticket.patron_email or ticket.claimed_by is None:
        return
    language = ticket.chat.language if ticket.chat and ticket.chat.language else "en"
    with translation.override(language if language in ("en", "es") else "en"):
        library = ticket.claimed_by.library.name
        body = _("A librarian of %(library)s is working on your question: an answer is on its way.") % {
            "library": library}
        if ticket.due_at:
            body += " " + _("Expect it by %(due)s.") % {"due": _due_text(ticket)}
        send_once(
            self.request.id,
            subject=_("%(consortium)s: an answer is on its way") % {"consortium": ticket.consortium.name},
            message=(f"{body}\n\n" + _("Your question:") + f"\n{ticket.question}\n\n"
                     + _("Reference:") + f" {ticket.pk}\n"),
            from_email=None,
            recipient_list=[ticket.patron_email],
        )


def followup_list_addresses(ticket: Ticket, stage: str) -> list[str]:
    """Who keeps the list a follow-up is on at `stage`: the staff of its library, of the library's
    partners, or the consortium's coordinators (docs/coordinators.md)."""
    staff = StaffProfile.objects.filter(is_active=True, user__is_active=True,
                                        library__consortium_id=ticket.consortium_id).exclude(user__email="")
    if stage == followup_clock.CONSORTIUM or ticket.library_id is None:
        staff = staff.filter(role=StaffProfile.Role.COORDINATOR)
    elif stage == followup_clock.PARTNERS:
        partners = LibraryPartner.objects.filter(library_id=ticket.library_id).values("partner_id")
        staff = staff.filter(library_id__in=partners)
    else:
        staff = staff.filter(library_id=ticket.library_id)
    return sorted(set(staff.values_list("user__email", flat=True)))


@shared_task(bind=True, acks_late=True)
def mail_followup_due(self: Any, ticket_id: str, kind: str, stage: str) -> None:
    """A follow-up due soon (kind "remind") or moved on to another list ("escalate"): its list is told."""
    ticket = Ticket.objects.select_related("library", "consortium").filter(pk=ticket_id).first()
    if ticket is None or ticket.status not in (Ticket.Status.NEW, Ticket.Status.IN_PROGRESS):
        return
    addresses = followup_list_addresses(ticket, stage)
    if not addresses:
        return
    home = ticket.library.name if ticket.library else ticket.consortium.name
    due = _due_text(ticket) if ticket.due_at else "no due time"
    if kind == "remind":
        subject = f"Follow-up due soon: {home}"
        lead = f"A follow-up of {home} is due by {due} and is not answered yet."
    else:
        whose = {followup_clock.PARTNERS: "the partner libraries'", followup_clock.CONSORTIUM: "the consortium's"}
        subject = f"Overdue follow-up of {home}"
        lead = (f"A follow-up of {home} was due by {due} and is not answered: it is now on "
                f"{whose.get(stage, 'your')} follow-up list as well.")
    send_once(self.request.id, subject=subject,
              message=f"{lead}\n\nQuestion:\n{ticket.question}\n\nOpen it: /staff/tickets/{ticket.pk}/\n",
              from_email=None, recipient_list=addresses)


@shared_task(acks_late=True)
def followups_sweep_due() -> int:
    """Every few minutes, from Celery beat: follow-ups' reminders and moves (routing.followup_clock)."""
    from routing.services.followup_deadlines import followups_sweep

    return followups_sweep(timezone.now())
