"""Numbers: which consortium (and library) a number is, keywords, and phones shown masked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from consortium.models import Consortium
from libraries.models import Library

_NOT_DIGITS = re.compile(r"\D")


def masked(phone: str) -> str:
    """"...1234": the last four digits, all anyone is shown (staff of every library, logs)."""
    digits = _NOT_DIGITS.sub("", phone or "")
    return f"...{digits[-4:]}" if digits else "..."


@dataclass(frozen=True)
class Destination:
    """What a `To` number is: a consortium's own number (library None), or a library's."""

    consortium: Consortium
    library: Library | None


def destination(number: str) -> Destination | None:
    library = (Library.objects.select_related("consortium")
               .filter(sms_number=number, is_active=True, consortium__is_active=True).first())
    if library is not None:
        return Destination(library.consortium, library)
    consortium = Consortium.objects.filter(sms_number=number, is_active=True).first()
    return Destination(consortium, None) if consortium else None


def keyword_library(consortium: Consortium, text: str) -> tuple[Library | None, str]:
    """The library whose keyword is the first word of `text`, and the text without it; else (None, text)."""
    first, _, rest = text.strip().partition(" ")
    if not first:
        return None, text
    library = (Library.objects.filter(consortium=consortium, is_active=True, sms_keyword__iexact=first)
               .exclude(sms_keyword="").first())
    if library is None:
        return None, text
    return library, rest.strip()


def help_text(consortium: Consortium) -> str:
    return consortium.sms_help or (f"{consortium.name}: librarians answer your texts. Msg&data rates may apply. "
                                   "Reply STOP to stop, START to start again.")
