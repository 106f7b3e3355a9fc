"""Patron blocks, for the consortium's coordinators: every block librarians made, in force and past,
with its reason, keys (masked), chat and history; lift one with a note, or extend it (30 days at most).

The rules are routing.blocks' and the writes routing.services.blocks'; this view parses and answers.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from coordination.access import Coordinator
from coordination.views._page import context, int_param, staff_page
from routing import blocks, whispers
from routing.models import PatronBlock
from routing.services import blocks as block_services
from routing.services.common import Refused

TRANSCRIPT_SHOWN = 1000  # lines of the block's chat shown, as the history page shows at once
PAST_SHOWN = 200  # past blocks listed, newest first (docs/security.md, "Lists and exports")
EXTEND_DAYS = (1, 3, 7, 14, 30)


@require_http_methods(["GET", "POST"])
@staff_page("coordinator")
def blocks_page(request: HttpRequest, who: Coordinator) -> HttpResponse:
    now = timezone.now()
    status = 200
    if request.method == "POST":
        try:
            _act(request, who, now)
        except Refused as e:
            fields = "; ".join(f"{k}: {', '.join(v)}" for k, v in e.fields.items())
            messages.error(request, fields or e.detail)
            status = 400
        else:
            return redirect(request.get_full_path())
    rows = (PatronBlock.objects.filter(consortium=who.consortium)
            .select_related("created_by__user", "created_by__library", "lifted_by__user", "chat"))
    active = list(rows.filter(blocks.active_q(now)).order_by("expires_at"))
    past = list(rows.exclude(blocks.active_q(now)).order_by("-created_at")[:PAST_SHOWN])
    return render(request, "coordination/blocks.html", context(
        who, "blocks", active=[_row(b, now) for b in active], past=[_row(b, now) for b in past],
        extend_days=EXTEND_DAYS, max_days=blocks.MAX_DAYS), status=status)


@require_GET
@staff_page("coordinator")
def block_page(request: HttpRequest, who: Coordinator, block_id: int) -> HttpResponse:
    """One block and the chat it was made from (internal notes marked), for a coordinator to judge it
    by: the consortium's coordinators read every chat of it (routing.access.may_read)."""
    now = timezone.now()
    block = (PatronBlock.objects.filter(pk=block_id, consortium=who.consortium)
             .select_related("created_by__user", "created_by__library", "lifted_by__user", "chat__home_library")
             .first())
    if block is None:
        raise Http404("no such block")
    chat = block.chat
    reader = who.profile.pk if who.profile else None
    messages_ = (list(chat.messages.filter(whispers.visible_q(reader)).order_by("seq")[:TRANSCRIPT_SHOWN])
                 if chat is not None else [])
    return render(request, "coordination/block.html", context(
        who, "blocks", row=_row(block, now), chat=chat, transcript=messages_))


def _key(block: PatronBlock, kind: str, value: str, now: dt.datetime) -> str:
    """"device …3f9a"; the address with its own end (a day at most), or "(expired)" once it passed."""
    if kind != "address":
        return f"{kind} {value}"
    until = block.address_until
    return f"{kind} {value} " + (f"(until {until:%Y-%m-%d %H:%M} UTC)" if until and until > now else "(expired)")


def _row(block: PatronBlock, now: dt.datetime) -> dict[str, object]:
    keys = [_key(block, kind, value, now) for kind, value in block.hint.items()]
    return {"block": block, "status": blocks.status_of(block, now), "keys": keys,
            "furthest": blocks.longest(coordinator=True, created_at=block.created_at)}


def _act(request: HttpRequest, who: Coordinator, now: dt.datetime) -> None:
    action = request.POST.get("action", "")
    block_id = int_param(request.POST.get("block"))
    note = request.POST.get("note", "")
    by_name = who.profile.display_name if who.profile else request.user.get_username()
    if action == "lift":
        block_services.block_lift(consortium_id=who.consortium.pk, block_id=block_id, by=who.profile,
                                  by_name=by_name, note=note, now=now)
        messages.success(request, _("Block %(id)s lifted.") % {"id": block_id})
    elif action == "extend":
        days = int_param(request.POST.get("days"))
        if days not in EXTEND_DAYS:
            raise Refused("invalid", gettext_lazy("choose how long"),
                          {"days": [format_lazy(gettext_lazy("one of {values}"),
                                                values=", ".join(map(str, EXTEND_DAYS)))]})
        block = PatronBlock.objects.filter(pk=block_id, consortium=who.consortium).first()
        if block is None:
            raise Refused("not_found", gettext_lazy("no such block"))
        until = min(max(block.expires_at, now) + dt.timedelta(days=days),
                    blocks.longest(coordinator=True, created_at=block.created_at))
        if until <= block.expires_at:
            raise Refused("invalid", format_lazy(
                gettext_lazy("this block already runs as long as a block may ({days} days)"), days=blocks.MAX_DAYS))
        block_services.block_extend(consortium_id=who.consortium.pk, block_id=block_id, by=who.profile,
                                    by_name=by_name, until=until, note=note, now=now)
        messages.success(request, _("Block %(id)s now ends %(until)s UTC.") % {
            "id": block_id, "until": f"{until:%Y-%m-%d %H:%M}"})
    else:
        raise Refused("invalid", gettext_lazy("no such action"))
