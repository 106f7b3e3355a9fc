"""Texts the routing of a chat causes: the closing text when an SMS chat ends, and a follow-up's
answer texted to the phone its question came from. routing.services calls these for SMS chats."""

from __future__ import annotations

from datetime import datetime

from routing.models import Chat, Ticket
from texting.models import OutboundText, SmsChat
from texting.outbound import text_queue

CLOSING = {
    "idle": "This chat has ended after a quiet spell. Text us again any time with a new question.",
    "librarian": "The librarian has ended this chat. Text us again any time with a new question.",
    "unanswered": "No librarian could answer in time. Your question is saved: a librarian will text you back.",
}
CLOSING_ES = {
    "idle": "Este chat terminó por inactividad. Escríbanos de nuevo cuando quiera con otra pregunta.",
    "librarian": "La bibliotecaria o el bibliotecario terminó este chat. Escríbanos de nuevo cuando quiera.",
    "unanswered": "Nadie pudo responder a tiempo. Guardamos su pregunta: le responderemos por mensaje de texto.",
}
DEFAULT_CLOSING = "This chat has ended. Text us again any time with a new question."


def sms_chat_ended(chat: Chat, reason: str, now: datetime) -> None:
    """One closing text, from the number the patron texted. None after STOP (the phone asked for silence)."""
    if reason == "opted_out":
        return
    link = SmsChat.objects.select_related("patron").filter(chat=chat).first()
    if link is None or OutboundText.objects.filter(chat=chat, kind=OutboundText.Kind.CLOSING).exists():
        return
    table = CLOSING_ES if chat.language == "es" else CLOSING
    text_queue(link.patron, kind=OutboundText.Kind.CLOSING, body=table.get(reason, DEFAULT_CLOSING),
               from_number=link.number, now=now, chat=chat)


def followup_answered(ticket: Ticket, now: datetime) -> bool:
    """Text the answer of a follow-up that came by text. False when it did not (no phone to text)."""
    if ticket.chat_id is None:
        return False
    link = SmsChat.objects.select_related("patron").filter(chat_id=ticket.chat_id).first()
    if link is None:
        return False
    text_queue(link.patron, kind=OutboundText.Kind.FOLLOWUP, body=ticket.answer, from_number=link.number,
               now=now, chat=Chat(pk=ticket.chat_id))
    return True
