"""Privacy: what identifies a patron is kept only as long as the consortium says, and less on request.

Two ways a chat loses its personal data (docs/privacy.md says it in plain words for coordinators):

- **Scrubbing** (`chats_scrub_expired`, nightly from Celery beat): once a chat is older than its
  retention (the home library's `transcript_retention_days`, else the consortium's), the patron's
  name, email and IP address go, and so do emails, phone numbers and card-like numbers inside the
  question, every message, the transfer note and the survey comment. Files are deleted. The text
  around them stays readable ("my card is [number]"), and every figure the statistics use stays:
  home library, who answered, the step, the times, READ scale, subjects, outcome, survey rating.
  The chat's token stops opening anything.
- **Deletion at the patron's request** (`chat_forget`, `DELETE /api/v1/chats/<id>` with the chat's
  token): the messages themselves go, with the same personal fields; a row with no text remains so
  that the library's counts do not change behind the coordinator's back.

Both set `Chat.scrubbed`. Follow-up tickets copy a question and a transcript; once a ticket is
answered or closed and older than the retention, its copy is scrubbed the same way. Patron blocks that
ended longer ago than the consortium's retention are deleted by the same nightly job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from consortium.models import Consortium
from libraries.models import Library
from routing.models import (
    LIVE_STATES,
    Chat,
    ChatFile,
    ChatState,
    Message,
    PatronBlock,
    StaffRoomLine,
    Survey,
    Ticket,
    TranscriptMail,
)
from routing.services import chats, common

FINISHED = (ChatState.ENDED, ChatState.ABANDONED, ChatState.UNSTAFFED)
BATCH = 500

EMAIL = "[email]"
PHONE = "[phone]"
NUMBER = "[number]"
NAME = "[name]"
DELETED = "[deleted at the patron's request]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# An ISBN is how patrons and librarians name a book: kept when it says it is one.
_ISBN = re.compile(r"\bISBN(?:-1[03])?:?\s*(?:97[89][\s-]?)?\d{1,5}[\s-]?\d{1,7}[\s-]?\d{1,7}[\s-]?[\dXx]\b",
                   re.IGNORECASE)
# Numbers that identify a person, most specific first. Edges: not inside a longer word or number,
# so dates (2026-03-04), years (1998-2004), ZIP+4 (33602-1234), call numbers and times are left alone.
_BEFORE, _AFTER = r"(?<![\w.+-])", r"(?![\w-])"
_CARDS = [
    re.compile(_BEFORE + r"\d{4}[ -]\d{4}[ -]\d{4}(?:[ -]\d{1,7})?" + _AFTER),  # 4-4-4(-4): bank and many cards
    re.compile(_BEFORE + r"\d[ -]\d{4}[ -]\d{5}[ -]\d{4}" + _AFTER),  # 2 1234 00567 8901: Codabar library cards
    re.compile(_BEFORE + r"\d{3}-\d{2}-\d{4}" + _AFTER),  # US social security numbers
]
_PHONES = [
    re.compile(_BEFORE + r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}" + _AFTER),  # (813) 555-0100
    re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}" + _AFTER),  # +44 20 7946 0958
    re.compile(_BEFORE + r"\d{3}-\d{4}" + _AFTER),  # 555-0100
]
_DIGIT_RUN = re.compile(_BEFORE + r"\d{10,19}" + _AFTER)  # a card or account number typed without spaces


def scrub_text(text: str, names: Iterable[str] = ()) -> str:
    """`text` without emails, phone numbers, card-like numbers and the patron's own name(s)."""
    if not text:
        return text
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _EMAIL.sub(EMAIL, text)
    text = _ISBN.sub(keep, text)
    for pattern in _CARDS:
        text = pattern.sub(NUMBER, text)
    for pattern in _PHONES:
        text = pattern.sub(lambda m: PHONE if sum(c.isdigit() for c in m.group(0)) >= 7 else m.group(0), text)
    text = _DIGIT_RUN.sub(NUMBER, text)
    for name in _name_parts(names):
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", NAME, text, flags=re.IGNORECASE)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


def _name_parts(names: Iterable[str]) -> list[str]:
    """The full names and each part of three letters or more ("Maria", "Lopez"), longest first."""
    parts: set[str] = set()
    for name in names:
        name = " ".join((name or "").split())
        if len(name) >= 3:
            parts.add(name)
            parts.update(word for word in re.split(r"[\s,]+", name) if len(word) >= 3)
    return sorted(parts, key=len, reverse=True)


# --- one chat ------------------------------------------------------------------------------------------


def _delete_files(chat: Chat) -> None:
    files = list(ChatFile.objects.filter(chat=chat))
    stored = [f.data.name for f in files if f.data and f.data.name]
    storage = files[0].data.storage if files else None
    ChatFile.objects.filter(chat=chat).delete()
    if storage is not None:
        def delete_stored() -> None:
            for name in stored:
                storage.delete(name)

        # Stored bytes go only once the rows are gone for good (a rollback keeps both).
        transaction.on_commit(delete_stored)


def _scrub_ticket(ticket: Ticket, names: Iterable[str]) -> None:
    names = [*names, ticket.patron_name]
    ticket.question = scrub_text(ticket.question, names)
    ticket.transcript = scrub_text(ticket.transcript, names)
    ticket.answer = scrub_text(ticket.answer, names)
    ticket.patron_name = ""
    ticket.patron_email = ""
    ticket.save(update_fields=["question", "transcript", "answer", "patron_name", "patron_email"])


def chat_scrub(chat: Chat) -> None:
    """Remove what identifies the patron from a locked, finished chat; keep the rest (see module doc)."""
    names = [chat.patron_name]
    chat.question = scrub_text(chat.question, names)
    chat.transfer_note = scrub_text(chat.transfer_note, names)
    chat.patron_name = ""
    chat.patron_email = ""
    chat.patron_ip = None
    chat.patron_device = ""
    # The token dies with the retention: a transcript link, a resumed socket, a poll or a DELETE with it
    # now finds nothing (404 / 4403), whatever was kept of the chat (issue 13.12).
    chat.token_hash = ""
    chat.scrubbed = True
    chat.save(update_fields=["question", "transfer_note", "patron_name", "patron_email", "patron_ip", "patron_device",
                             "token_hash", "scrubbed"])
    for message in Message.objects.filter(chat=chat):
        body = scrub_text(message.body, names)
        name = "" if message.sender == Message.Sender.PATRON else message.name
        if body != message.body or name != message.name:
            message.body, message.name = body, name
            message.save(update_fields=["body", "name"])
    _delete_files(chat)
    TranscriptMail.objects.filter(chat=chat).update(email="")
    for survey in Survey.objects.filter(chat=chat).exclude(comment=""):
        survey.comment = scrub_text(survey.comment, names)
        survey.save(update_fields=["comment"])
    for ticket in Ticket.objects.filter(chat=chat, status__in=(Ticket.Status.ANSWERED, Ticket.Status.CLOSED)):
        _scrub_ticket(ticket, names)


def chat_forget(chat_id: str, now: datetime) -> None:
    """The patron asked for the chat to be deleted: end it if it is still going, then delete its messages,
    files and personal data. A row without text stays, so the statistics keep counting it."""
    chat = Chat.objects.filter(pk=chat_id).first()
    if chat is None:
        raise common.ServiceError("not_found", "no such chat")
    if chat.state in LIVE_STATES:
        chats.chat_end(chat_id, now, by="patron")
    with transaction.atomic():
        chat = Chat.objects.select_for_update(of=("self",)).get(pk=chat_id)
        names = [chat.patron_name]
        _delete_files(chat)
        Message.objects.filter(chat=chat).delete()
        TranscriptMail.objects.filter(chat=chat).update(email="")
        Survey.objects.filter(chat=chat).exclude(comment="").update(comment="")
        for ticket in Ticket.objects.filter(chat=chat):
            _scrub_ticket(ticket, names)
        chat.question = DELETED
        chat.transfer_note = ""
        chat.patron_name = ""
        chat.patron_email = ""
        chat.patron_ip = None
        chat.patron_device = ""
        chat.token_hash = ""  # the token stops opening anything: there is nothing left to open
        chat.scrubbed = True
        chat.save(update_fields=["question", "transfer_note", "patron_name", "patron_email", "patron_ip",
                                 "patron_device", "token_hash", "scrubbed"])
        common.trace(chat, "deleted", now, by="patron")


# --- the nightly job ------------------------------------------------------------------------------------


def retention_cutoffs(consortium: Consortium, now: datetime) -> tuple[datetime, dict[int, datetime]]:
    """The consortium's cutoff, and the cutoff of each library that sets its own retention."""
    default = now - timedelta(days=consortium.transcript_retention_days)
    overrides = {
        pk: now - timedelta(days=days)
        for pk, days in Library.objects.filter(consortium=consortium, transcript_retention_days__isnull=False)
        .values_list("pk", "transcript_retention_days")
        if days is not None
    }
    return default, overrides


def past_retention(consortium: Consortium, now: datetime, *, library_field: str) -> Q:
    """Rows created before their library's cutoff (`library_field` names the library), as a filter."""
    default, overrides = retention_cutoffs(consortium, now)
    past = Q(created_at__lt=default) & ~Q(**{f"{library_field}__in": list(overrides)})
    for library_id, cutoff in overrides.items():
        past |= Q(**{library_field: library_id}, created_at__lt=cutoff)
    return past


def expired_chats(consortium: Consortium, now: datetime) -> Q:
    """Chats of this consortium past their retention, finished and not yet scrubbed, as a filter."""
    return (Q(consortium=consortium, scrubbed=False, state__in=FINISHED)
            & past_retention(consortium, now, library_field="home_library_id"))


def chats_scrub_expired(now: datetime, *, batch: int = BATCH) -> int:
    """Scrub every chat past its retention, in small transactions; returns how many were scrubbed.

    Rows are taken with SKIP LOCKED, so two copies of the job (two beat processes by mistake) share
    the work instead of doing it twice, and a chat being written right now is left for tomorrow.
    """
    done = 0
    for consortium in Consortium.objects.all():
        due = expired_chats(consortium, now)
        while True:
            with transaction.atomic():
                chats = list(Chat.objects.select_for_update(skip_locked=True, of=("self",))
                             .filter(due).order_by("created_at")[:batch])
                for chat in chats:
                    chat_scrub(chat)
            done += len(chats)
            if len(chats) < batch:
                break
        tickets_scrub_expired(consortium, now)
        blocks_delete_expired(consortium, now)
        staff_room_delete_expired(consortium, now)
    return done


def blocks_delete_expired(consortium: Consortium, now: datetime) -> int:
    """Patron blocks (routing.blocks) that ended — expired or lifted — longer ago than the consortium's
    retention are deleted: their reason is a librarian's words about a patron, and their audit has
    served its time."""
    cutoff = now - timedelta(days=consortium.transcript_retention_days)
    deleted, _ = PatronBlock.objects.filter(Q(expires_at__lt=cutoff) | Q(lifted_at__lt=cutoff),
                                            consortium=consortium).delete()
    return deleted


def staff_room_delete_expired(consortium: Consortium, now: datetime) -> int:
    """Lines of the staff room (routing.staff_room) older than the consortium's retention are deleted:
    staff talk of the day, which may name a patron, kept no longer than the chats it was about."""
    cutoff = now - timedelta(days=consortium.transcript_retention_days)
    deleted, _ = StaffRoomLine.objects.filter(consortium=consortium, at__lt=cutoff).delete()
    return deleted


def tickets_scrub_expired(consortium: Consortium, now: datetime) -> int:
    """Answered and closed follow-ups past their retention lose their copy of the patron's words."""
    rows = (Ticket.objects.filter(past_retention(consortium, now, library_field="library_id"),
                                  consortium=consortium, status__in=(Ticket.Status.ANSWERED, Ticket.Status.CLOSED))
            .exclude(patron_email="", patron_name=""))
    count = 0
    with transaction.atomic():
        for ticket in rows.select_for_update(skip_locked=True)[:BATCH * 10]:
            _scrub_ticket(ticket, [])
            count += 1
    return count
