"""Follow-ups (the Ticket model): a librarian's referral, the patron's question form, and the staff
who claim, answer or close them."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.models import Consortium
from libraries.models import Library, StaffProfile
from routing import whispers
from routing.models import Chat, ChatState, Ticket
from routing.services.chats import SMS_MAX_BODY, home_library_resolve
from routing.services.common import Refused, ServiceError, chat_end_locked, chat_lock, trace
from routing.services.followup_deadlines import followup_due_set, followup_settled, patron_deadline_parse
from routing.staff.selectors import followups_for


def transcript_text(chat: Chat, *, for_patron: bool) -> str:
    """The chat as text: for the patron without internal notes; for staff (a follow-up's copy, read by
    whoever claims it) without whispers, which only their addressee and author read (routing.whispers)."""
    lines = []
    for m in chat.messages.filter(Q(internal=False) if for_patron else whispers.visible_q(None)).order_by("seq"):
        # The patron's copy is in the language active when it is written (the mail's: the patron's).
        who = {"patron": chat.patron_name or _("You") if for_patron else chat.patron_name or "Patron",
               "system": "—"}.get(m.sender, m.name or (_("Librarian") if for_patron else "Librarian"))
        lines.append(f"[{m.at:%Y-%m-%d %H:%M}] {who}: {m.body}")
    return "\n".join(lines)


def followup_create(*, consortium: Consortium, library: Library | None, chat: Chat | None, question: str,
                  email: str, name: str = "", note: str = "", source: str, now: datetime,
                  created_by: StaffProfile | None = None, mail_patron: bool = True,
                  patron_deadline: datetime | None = None, language: str = "") -> Ticket:
    """A follow-up, due by the patron's deadline, else the library's or the consortium's
    (routing.services.followup_deadlines)."""
    from routing.tasks import mail_ticket_created  # tasks import services: keep the import graph one-way

    ticket = Ticket(
        consortium=consortium, library=library, chat=chat, question=question,
        transcript=transcript_text(chat, for_patron=False) if chat else "", patron_name=name,
        patron_email=email, note=note, source=source, created_at=now, created_by=created_by,
        language=language or (chat.language if chat else ""),
    )
    followup_due_set(ticket, now=now, patron_deadline=patron_deadline)
    ticket.save(force_insert=True)
    if chat is not None:
        trace(chat, "ticket", now, ticket=ticket.pk, library=library.slug if library else None, source=source,
              due_at=ticket.due_at.isoformat() if ticket.due_at else None, due_from=ticket.due_from)
    if email and mail_patron:
        transaction.on_commit(lambda: mail_ticket_created.delay(ticket.pk))
    return ticket


def chat_refer(librarian: StaffProfile, chat_id: str, now: datetime, *, library_slug: str | None,
               note: str = "", deadline: str = "") -> Ticket:
    """A follow-up from the chat the librarian holds; `deadline` the day the patron needs the answer by."""
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None or chat.librarian_id != librarian.pk:
            raise ServiceError("not_found", gettext_lazy("you do not hold that chat"))
        library = chat.home_library
        if library_slug:
            library = Library.objects.filter(consortium=chat.consortium, slug=library_slug).first()
            if library is None:
                raise ServiceError("not_found", format_lazy(gettext_lazy("no library {slug}"), slug=repr(library_slug)))
        by = patron_deadline_parse(deadline, consortium=chat.consortium, library=library, now=now)
        return followup_create(consortium=chat.consortium, library=library, chat=chat, question=chat.question,
                             email=chat.patron_email, name=chat.patron_name, note=note, source="referral",
                             now=now, created_by=librarian, patron_deadline=by)


def question_leave(*, consortium: Consortium, question: str, email: str, name: str = "",
                   library_slug: str | None = None, zip_code: str | None = None, chat: Chat | None = None,
                   now: datetime, mail_patron: bool = True, deadline: str = "", language: str = "") -> Ticket:
    """The offline question form: a follow-up ticket for the home library (or the consortium). The
    patron is mailed a confirmation unless `mail_patron` is false (past a mail limit: the question is
    kept all the same). `deadline`: the day the patron needs the answer by (YYYY-MM-DD), or blank."""
    library, _ = home_library_resolve(consortium, library_slug, zip_code)
    by = patron_deadline_parse(deadline, consortium=consortium, library=library, now=now)
    with transaction.atomic():
        if chat is not None:
            locked = chat_lock(chat.pk)
            if locked is not None:
                library = library or locked.home_library
                if locked.state == ChatState.QUEUED:
                    chat_end_locked(locked, now, by="patron", reason="question_form")
        return followup_create(consortium=consortium, library=library, chat=chat, question=question, email=email,
                             name=name, source="question_form", now=now, mail_patron=mail_patron,
                             patron_deadline=by, language=language)


MAX_ANSWER = 10000


def _lock_followup(profile: StaffProfile, ticket_id: str) -> Ticket:
    ticket = followups_for(profile, status="all").select_for_update(of=("self",)).filter(pk=ticket_id).first()
    if ticket is None:
        raise Refused("not_found", gettext_lazy("no such follow-up"))
    return ticket


def _lock_workable_followup(profile: StaffProfile, ticket_id: str) -> Ticket:
    """The follow-up, locked, when this librarian may still work on it: open, and claimed by nobody else."""
    ticket = _lock_followup(profile, ticket_id)
    if ticket.status in (Ticket.Status.ANSWERED, Ticket.Status.CLOSED):
        raise Refused("conflict", gettext_lazy("this follow-up is already answered or closed"))
    if ticket.claimed_by_id not in (None, profile.pk):
        if ticket.claimed_by is None:
            raise Refused("conflict", gettext_lazy("someone has claimed this follow-up"))
        raise Refused("conflict", format_lazy(gettext_lazy("{name} has claimed this follow-up"),
                                              name=ticket.claimed_by.display_name))
    return ticket


def followup_claim(profile: StaffProfile, ticket_id: str, now: datetime) -> Ticket:
    """Claim a follow-up; the first claim tells the patron (by mail) that an answer is on its way."""
    from routing.tasks import mail_ticket_on_its_way  # tasks import services: keep the import graph one-way

    with transaction.atomic():
        ticket = _lock_workable_followup(profile, ticket_id)
        first = ticket.claimed_by_id is None and ticket.status == Ticket.Status.NEW
        ticket.claimed_by = profile
        ticket.status = Ticket.Status.IN_PROGRESS
        ticket.history = [*ticket.history, {"at": now.isoformat(), "kind": "claimed", "by": profile.pk,
                                            "library": profile.library.slug}]
        ticket.save(update_fields=["claimed_by", "status", "history"])
        if first and ticket.patron_email:
            ticket_pk = ticket.pk
            transaction.on_commit(lambda: mail_ticket_on_its_way.delay(ticket_pk))
    return ticket


def followup_answer(profile: StaffProfile, ticket_id: str, answer: str, now: datetime) -> Ticket:
    """Record the answer and mail it to the patron (after commit: no mail for an answer not stored)."""
    from routing.tasks import mail_ticket_answer  # tasks import services: keep the import graph one-way

    answer = (answer or "").strip()
    if not answer:
        raise Refused("invalid", gettext_lazy("write an answer"), {"answer": [gettext_lazy("required")]})
    if len(answer) > MAX_ANSWER:
        raise Refused("invalid", gettext_lazy("the answer is too long"),
                      {"answer": [format_lazy(gettext_lazy("at most {most} characters"), most=MAX_ANSWER)]})
    with transaction.atomic():
        ticket = _lock_workable_followup(profile, ticket_id)
        texted = ticket.source == "sms"  # a question that came by text is answered by text (docs/sms.md)
        if not ticket.patron_email and not texted:
            raise Refused("invalid", gettext_lazy("this follow-up has no email address to answer"))
        ticket.claimed_by = profile
        ticket.answer = answer
        ticket.status = Ticket.Status.ANSWERED
        ticket.answered_at = now
        followup_settled(ticket)
        ticket.save(update_fields=["claimed_by", "answer", "status", "answered_at", "next_check_at"])
        ticket_pk = ticket.pk
        if texted:
            from texting.conversation import followup_answered  # texting builds on routing: imported here

            if len(answer) > SMS_MAX_BODY:
                raise Refused("invalid", gettext_lazy("the answer is too long for a text"),
                              {"answer": [format_lazy(gettext_lazy(
                                  "at most {most} characters: this question came by text"), most=SMS_MAX_BODY)]})
            followup_answered(ticket, now)
        else:
            transaction.on_commit(lambda: mail_ticket_answer.delay(ticket_pk))
    return ticket


def followup_close(profile: StaffProfile, ticket_id: str, now: datetime) -> Ticket:
    """Close without an answer by mail (a duplicate, spam, or answered another way)."""
    with transaction.atomic():
        ticket = _lock_followup(profile, ticket_id)
        if ticket.status == Ticket.Status.CLOSED:
            return ticket
        if ticket.claimed_by_id is None:
            ticket.claimed_by = profile
        ticket.status = Ticket.Status.CLOSED
        followup_settled(ticket)
        ticket.save(update_fields=["claimed_by", "status", "next_check_at"])
    return ticket
