"""Celery tasks: thin wrappers that fetch a row and send mail. Enqueued after commit."""

from __future__ import annotations

from celery import shared_task
from django.core.mail import send_mail

from routing.models import Chat, Ticket


@shared_task(acks_late=True)
def mail_ticket_created(ticket_id: str) -> None:
    ticket = Ticket.objects.select_related("library", "consortium").filter(pk=ticket_id).first()
    if ticket is None or not ticket.patron_email:
        return
    who = ticket.library.name if ticket.library else ticket.consortium.name
    send_mail(
        subject=f"{ticket.consortium.name}: we have your question",
        message=(f"Hello{(' ' + ticket.patron_name) if ticket.patron_name else ''},\n\n"
                 f"{who} has your question and will answer by email.\n\nYour question:\n{ticket.question}\n\n"
                 f"Reference: {ticket.pk}\n"),
        from_email=None,
        recipient_list=[ticket.patron_email],
    )


@shared_task(acks_late=True)
def mail_ticket_answer(ticket_id: str) -> None:
    ticket = Ticket.objects.select_related("consortium").filter(pk=ticket_id).first()
    if ticket is None or not ticket.patron_email or not ticket.answer:
        return
    send_mail(
        subject=f"{ticket.consortium.name}: an answer to your question",
        message=f"Your question:\n{ticket.question}\n\nOur answer:\n{ticket.answer}\n\nReference: {ticket.pk}\n",
        from_email=None,
        recipient_list=[ticket.patron_email],
    )


@shared_task(acks_late=True)
def mail_transcript(chat_id: str, email: str) -> None:
    from routing.services import transcript_text

    chat = Chat.objects.select_related("consortium").filter(pk=chat_id).first()
    if chat is None:
        return
    send_mail(
        subject=f"{chat.consortium.name}: your chat transcript",
        message=transcript_text(chat, for_patron=True) + "\n",
        from_email=None,
        recipient_list=[email],
    )


@shared_task(acks_late=True)
def chats_scrub_expired() -> int:
    """Nightly, from Celery beat: chats past their retention lose the patron's personal data."""
    from django.utils import timezone

    from routing.privacy import chats_scrub_expired as scrub

    return scrub(timezone.now())
