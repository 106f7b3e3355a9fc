"""The live board: who is on, what waits, per queue; the page starts from a snapshot, the socket keeps it live."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from coordination.access import Coordinator
from coordination.board import board_snapshot
from coordination.i18n import board_strings
from coordination.views._page import context, staff_page


@require_GET
@staff_page("coordinator")
def board_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    snapshot = board_snapshot(who.consortium, timezone.now())
    return render(request, "coordination/board.html", context(who, "board", board=snapshot,
                                                            strings=board_strings()))
