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
import itertools
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse

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


class _Line:
    """A pseudo-buffer: what the writer writes is handed back, one line at a time, to be sent."""

    def write(self, s: str, /) -> str:
        return s


def lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Each row as one CSV line, cells made safe as `writer` makes them; nothing is held beyond one row."""
    out = csv.writer(_Line())
    for row in rows:
        yield out.writerow([cell(value) for value in row])


async def _chunks(text: Iterator[str], rows_per_chunk: int) -> AsyncIterator[str]:
    # Under ASGI a synchronous iterator would be read whole into a list before the first byte is sent
    # (Django's StreamingHttpResponse.__aiter__): pull it in chunks, each in the request's database thread.
    take = sync_to_async(lambda: "".join(itertools.islice(text, rows_per_chunk)), thread_sensitive=True)
    while chunk := await take():
        yield chunk


class CsvStream(StreamingHttpResponse):
    """Sent as it is written. `content` reads what is left of the stream at once, for a caller that wants the
    whole file (a test client, a script): the server itself only ever iterates it."""

    @property
    def content(self) -> bytes:  # type: ignore[override]
        return self.getvalue()


# Rows sent together under ASGI: one database round of work, and one write to the client, per chunk.
ROWS_PER_CHUNK = 500


def streaming_response(request: HttpRequest, rows: Iterable[Iterable[object]], filename: str) -> CsvStream:
    """A CSV download sent as it is written: `rows` is a generator (over a queryset's .iterator()), so an
    export of any size costs the memory of one chunk of rows."""
    text = lines(rows)
    content: Iterator[str] | AsyncIterator[str] = (_chunks(text, ROWS_PER_CHUNK)
                                                   if isinstance(request, ASGIRequest) else text)
    response = CsvStream(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
