"""CSV files a spreadsheet cannot be tricked into running: every CSV the product writes goes through here.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` is a formula to Excel, LibreOffice and Google
Sheets; one starting with a tab or a carriage return can be read as one after the spreadsheet trims it.
Patrons choose some of what ends up in our CSVs (the chat's language), librarians others (subject tags,
user names), so a coordinator who opens a report must never run ``=HYPERLINK(...)`` or ``=cmd|...``
someone typed. OWASP's rule (CSV Injection): prefix such a cell with a single quote, which the
spreadsheet shows as text and a program reading the CSV can strip.

Plain numbers are left alone, so a numeric column stays numeric: a Python ``int`` or ``float`` is never
touched, nor is a string that is just a number (``-12``, ``+3.5``), which no spreadsheet reads as a
formula. Anything else with a dangerous first character (``-1+2``, ``-x``, ``@SUM(A1)``) is quoted.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def cell(value: object) -> object:
    """The value to write in a CSV cell: unchanged unless a spreadsheet would read it as a formula."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


class SafeWriter:
    """`csv.writer` with every cell passed through `cell` first."""

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: _Writable) -> SafeWriter:
    return SafeWriter(out)
