"""The mentor pages of the staff console (docs/console.md, "Mentors"): the board of every live chat
of the consortium, and one chat opened read-only. The page holds a staff socket, and everything it
does goes through its frames (watch, whisper, mentor_join, take_over: routing.sockets.staff), so
the rules and the trace are those of routing.services.mentoring whatever client asks."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from libraries.models import StaffProfile
from routing import access
from routing.models import Chat
from routing.staff import selectors
from routing.staff.i18n import console_strings
from routing.staff.views import staff_page

BOARD_REFRESH_SECONDS = 5


@require_GET
@staff_page
def board(request: HttpRequest, profile: StaffProfile) -> HttpResponse:
    if not access.is_mentor(profile):
        return render(request, "routing/staff/forbidden.html", status=403)
    template = "routing/staff/mentor_board_rows.html" if request.GET.get("rows") else "routing/staff/mentor_board.html"
    return render(request, template, {
        "profile": profile, "section": "mentor", "chats": selectors.live_board(profile), "now": timezone.now(),
        "refresh_seconds": BOARD_REFRESH_SECONDS,
    })


@require_GET
@staff_page
def watch(request: HttpRequest, profile: StaffProfile, chat_id: str) -> HttpResponse:
    chat = Chat.objects.filter(pk=chat_id).first()
    if chat is None or not access.may_watch(profile, chat):
        raise Http404("no such chat")
    return render(request, "routing/staff/mentor_watch.html", {
        "profile": profile, "section": "mentor", "chat_id": chat.pk, "mentor": access.may_mentor(profile, chat),
        "server_now": timezone.now().isoformat(), "strings": console_strings(),
    })
