"""Celery tasks: thin wrappers that fetch a row and send mail. Enqueued after commit.

Every mail to a patron is in the patron's language (the chat's or the follow-up's, routing.patron.i18n):
its words are built by a `*_text` function under that language.

Every task is acknowledged late (settings: CELERY_TASK_ACKS_LATE, CELERY_TASK_REJECT_ON_WORKER_LOST):
a worker killed in the middle of one leaves it to be run again. So that a run again does not mail
the patron twice, each mail is sent once per task id (`send_once`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from libraries.models import LibraryPartner, StaffProfile
from routing import followup_clock
from routing.models import Chat, SentMail, Ticket
from routing.patron.i18n import patron_language

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


def ticket_created_text(ticket: Ticket) -> tuple[str, str]:
    """The confirmation of a question, in the active language (the patron's)."""
    who = ticket.library.name if ticket.library else ticket.consortium.name
    values = {"consortium": ticket.consortium.name, "who": who, "question": ticket.question, "reference": ticket.pk}
    hello = (_("Hello %(name)s,") % {"name": ticket.patron_name}) if ticket.patron_name else _("Hello,")
    promise = _("%(who)s has your question and will answer by email.") % values
    if ticket.due_at:
        promise += " " + _("Expect it by %(due)s.") % {"due": _due_text(ticket)}
    body = (hello + "\n\n"
            + promise + "\n\n"
            + _("Your question:") + "\n" + ticket.question + "\n\n"
            + _("Reference: %(reference)s") % values + "\n\n"
            + _("This address was given with a question left on %(consortium)s's chat page. If it was not you, "
                "ignore this mail.") % values + "\n")
    return _("%(consortium)s: we have your question") % values, body


@shared_task(bind=True, acks_late=True)
def mail_ticket_created(self: Any, ticket_id: str) -> None:
    ticket = Ticket.objects.select_related("library", "consortium").filter(pk=ticket_id).first()
    if ticket is None or not ticket.patron_email:
        return
    with translation.override(patron_language(ticket.language)):
        subject, body = ticket_created_text(ticket)
    send_once(self.request.id, subject=subject, message=body, from_email=None, recipient_list=[ticket.patron_email])


def ticket_answer_text(ticket: Ticket) -> tuple[str, str]:
    """The answer to a follow-up, in the active language (the patron's)."""
    values = {"consortium": ticket.consortium.name, "reference": ticket.pk}
    body = (_("Your question:") + "\n" + ticket.question + "\n\n" + _("Our answer:") + "\n" + ticket.answer
            + "\n\n" + _("Reference: %(reference)s") % values + "\n")
    return _("%(consortium)s: an answer to your question") % values, body


@shared_task(bind=True, acks_late=True)
def mail_ticket_answer(self: Any, ticket_id: str) -> None:
    ticket = Ticket.objects.select_related("consortium").filter(pk=ticket_id).first()
    if ticket is None or not ticket.patron_email or not ticket.answer:
        return
    with translation.override(patron_language(ticket.language)):
        subject, body = ticket_answer_text(ticket)
    send_once(self.request.id, subject=subject, message=body, from_email=None, recipient_list=[ticket.patron_email])


def transcript_mail_text(chat: Chat) -> tuple[str, str]:
    """The transcript mail, in the active language (the patron's). Whoever asked may have typed any
    address: the mail says who sent it and why, and the subject is fixed text, so nothing a patron
    wrote reaches the subject line (issue 13.1)."""
    from routing.services.followups import transcript_text
    from routing.services.transcripts import MAILS_PER_CHAT

    values = {"name": chat.consortium.name, "started": f"{chat.created_at:%Y-%m-%d}", "most": MAILS_PER_CHAT}
    body = (_("You asked for the transcript of your chat with %(name)s (started %(started)s); it is below.") % values
            + "\n" + _("It was asked for on %(name)s's chat page by someone in that chat. If you did not ask for "
                        "it, ignore this mail: a chat's transcript is mailed at most %(most)s times, and nothing "
                        "else will follow.") % values
            + "\n\n" + transcript_text(chat, for_patron=True) + "\n")
    return _("%(name)s: your chat transcript") % values, body


@shared_task(bind=True, acks_late=True)
def mail_transcript(self: Any, chat_id: str, email: str) -> None:
    chat = Chat.objects.select_related("consortium").filter(pk=chat_id).first()
    if chat is None or chat.scrubbed:  # scrubbed (or deleted) since it was asked for: nothing to send
        return
    with translation.override(patron_language(chat.language)):
        subject, body = transcript_mail_text(chat)
    send_once(self.request.id, subject=subject, message=body, from_email=None, recipient_list=[email])


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


def ticket_on_its_way_text(ticket: Ticket, library: str) -> tuple[str, str]:
    """The first claim of a follow-up told to the patron, in the active language (the patron's)."""
    values = {"consortium": ticket.consortium.name, "library": library, "reference": ticket.pk}
    body = _("A librarian of %(library)s is working on your question: an answer is on its way.") % values
    if ticket.due_at:
        body += " " + _("Expect it by %(due)s.") % {"due": _due_text(ticket)}
    body += ("\n\n" + _("Your question:") + "\n" + ticket.question + "\n\n"
             + _("Reference: %(reference)s") % values + "\n")
    return _("%(consortium)s: an answer is on its way") % values, body


@shared_task(bind=True, acks_late=True)
def mail_ticket_on_its_way(self: Any, ticket_id: str) -> None:
    """The first claim of a follow-up: the patron is told that a librarian is working on the answer,
    in the chat's language when it came from a chat."""
    ticket = (Ticket.objects.select_related("library", "consortium", "chat", "claimed_by__library")
              .filter(pk=ticket_id).first())
    if ticket is None or not ticket.patron_email or ticket.claimed_by is None:
        return
    with translation.override(patron_language(ticket.language or (ticket.chat.language if ticket.chat else ""))):
        subject, body = ticket_on_its_way_text(ticket, ticket.claimed_by.library.name)
    send_once(self.request.id, subject=subject, message=body, from_email=None, recipient_list=[ticket.patron_email])


def followup_list_staff(ticket: Ticket, stage: str) -> list[StaffProfile]:
    """Who keeps the list a follow-up is on at `stage`: the staff of its library, of the library's
    partners, or the consortium's coordinators (docs/coordinators.md). One profile per address."""
    staff = (StaffProfile.objects.filter(is_active=True, user__is_active=True,
                                         library__consortium_id=ticket.consortium_id)
             .exclude(user__email="").select_related("user"))
    if stage == followup_clock.CONSORTIUM or ticket.library_id is None:
        staff = staff.filter(role=StaffProfile.Role.COORDINATOR)
    elif stage == followup_clock.PARTNERS:
        partners = LibraryPartner.objects.filter(library_id=ticket.library_id).values("partner_id")
        staff = staff.filter(library_id__in=partners)
    else:
        staff = staff.filter(library_id=ticket.library_id)
    first_by_address: dict[str, StaffProfile] = {}
    for profile in staff.order_by("user__email", "pk"):
        first_by_address.setdefault(profile.user.email, profile)
    return list(first_by_address.values())


def followup_due_text(ticket: Ticket, kind: str, stage: str) -> tuple[str, str]:
    """A follow-up due soon (kind "remind") or moved on to the list of `stage` ("escalate"), told to the
    staff of that list, in the active language (the staff member's)."""
    home = ticket.library.name if ticket.library else ticket.consortium.name
    values = {"home": home, "due": _due_text(ticket) if ticket.due_at else _("no due time"),
              "url": f"{settings.PUBLIC_URL}/staff/tickets/{ticket.pk}/"}
    if kind == "remind":
        subject = _("Follow-up due soon: %(home)s") % values
        lead = _("A follow-up of %(home)s is due by %(due)s and is not answered yet.") % values
    else:
        subject = _("Overdue follow-up of %(home)s") % values
        if stage == followup_clock.PARTNERS:
            lead = _("A follow-up of %(home)s was due by %(due)s and is not answered: it is now on the partner "
                     "libraries' follow-up list as well.") % values
        elif stage == followup_clock.CONSORTIUM:
            lead = _("A follow-up of %(home)s was due by %(due)s and is not answered: it is now on the "
                     "consortium's follow-up list as well.") % values
        else:
            lead = _("A follow-up of %(home)s was due by %(due)s and is not answered: it is now on your "
                     "follow-up list as well.") % values
    body = (lead + "\n\n" + _("Question:") + "\n" + ticket.question + "\n\n"
            + _("Open it: %(url)s") % values + "\n")
    return subject, body


@shared_task(bind=True, acks_late=True)
def mail_followup_due(self: Any, ticket_id: str, kind: str, stage: str) -> int:
    """A follow-up due soon (kind "remind") or moved on to another list ("escalate"): each person on its
    list is told, in their own language. Once per task and address. Returns the mails sent."""
    ticket = Ticket.objects.select_related("library", "consortium").filter(pk=ticket_id).first()
    if ticket is None or ticket.status not in (Ticket.Status.NEW, Ticket.Status.IN_PROGRESS):
        return 0
    sent = 0
    for profile in followup_list_staff(ticket, stage):
        with translation.override(profile.language or settings.LANGUAGE_CODE):
            subject, body = followup_due_text(ticket, kind, stage)
        key = f"{self.request.id}:{profile.user.email}" if self.request.id else None
        sent += send_once(key, subject=subject, message=body, from_email=None, recipient_list=[profile.user.email])
    return sent


@shared_task(acks_late=True)
def followups_sweep_due() -> int:
    """Every few minutes, from Celery beat: follow-ups' reminders and moves (routing.followup_clock)."""
    from routing.services.followup_deadlines import followups_sweep

    return followups_sweep(timezone.now())
