"""The transcript as reviewers see it: scrubbed of the patron's identity.

Everything a review page or mail shows of a chat comes from here, never from the chat's rows
directly. The patron's name, email address and phone number (a texted chat's) are replaced by
placeholders wherever they appear, and so are any email address, phone or card-like number typed
in a message (routing.privacy.scrub_text, the same rules as the retention scrub). The patron is
"Patron". Internal notes are left out: staff write them about the patron, often with what
identifies them. A file shows as "[a file]", without its name or a link. Nothing else of the chat
is read: not its token, address, device or email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from routing.models import Chat, Message
from routing.privacy import EMAIL, PHONE, scrub_text
from texting.models import SmsChat

PATRON = "Patron"
FILE = "[a file]"


@dataclass(frozen=True)
class Line:
    who: str
    sender: str
    at: datetime
    body: str


def _identity(chat: Chat) -> tuple[list[str], list[tuple[str, str]]]:
    """The patron's names (scrub_text's `names`), and exact strings to replace first."""
    exact: list[tuple[str, str]] = []
    if chat.patron_email:
        exact.append((chat.patron_email, EMAIL))
    phone = _phone(chat)
    if phone:
        exact.append((phone, PHONE))
        if phone.startswith("+1") and len(phone) == 12:  # a US number as people write it: 8505551234
            exact.append((phone[2:], PHONE))
    return [chat.patron_name], exact


def _phone(chat: Chat) -> str:
    sms = SmsChat.objects.filter(chat_id=chat.pk).select_related("patron").first()
    return sms.patron.phone if sms else ""


def scrub(text: str, names: list[str], exact: list[tuple[str, str]]) -> str:
    for value, placeholder in exact:
        text = text.replace(value, placeholder)
    return scrub_text(text, names)


def question(chat: Chat) -> str:
    names, exact = _identity(chat)
    return scrub(chat.question, names, exact)


def lines(chat: Chat, limit: int = 2000) -> list[Line]:
    """The chat's messages, scrubbed, internal notes left out (see the module doc)."""
    names, exact = _identity(chat)
    found = []
    for m in (Message.objects.filter(chat=chat, internal=False).order_by("seq")
              .only("sender", "name", "body", "at", "file_id")[:limit]):
        if m.sender == Message.Sender.PATRON:
            who = PATRON
        elif m.sender == Message.Sender.SYSTEM:
            who = "System"
        else:
            who = m.name or "Librarian"
        body = scrub(m.body, names, exact)
        if m.file_id:
            body = f"{body} {FILE}".strip()
        found.append(Line(who, m.sender, m.at, body))
    return found
