"""Availability before the patron types (docs/protocol.md, "Availability"): the honest launcher.

What a chat started now would meet, decided by the router itself on a chat that does not exist:
`available` when it would be offered at once to a librarian with room for it, `busy` when it
would wait (the expected wait from routing.queueing: the chats already waiting and the slots of
the librarians who could answer), `closed` when it would be unstaffed at once, with the next time
any step of the library's plan opens.

Every open widget polls this, so the answer is kept per process for `FRESH_FOR` seconds
(`cached`), and served from memory before Django's thread and middleware
(`KeptAvailabilityMiddleware`, consortium/asgi.py); each process works its own answer out from the
database, so none depends on another.
Staff are never named.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from django.db.models import Avg, DurationField, ExpressionWrapper, F
from django.utils import formats, translation
from django.utils.translation import gettext, ngettext

from consortium.models import Consortium
from routing import router
from routing.access import origin_allowed, own_origin
from routing.models import Chat, ChatState
from routing.queueing import conditional_wait
from routing.selectors import situation_for
from routing.services.chats import home_library_resolve
from routing.structure import structure_of

FRESH_FOR = 5.0  # seconds an answer is kept (the contract: "cacheable for a few seconds")
HANDLE_FRESH_FOR = 600.0  # the mean handle time moves slowly: read it every ten minutes
HANDLE_SAMPLE = timedelta(weeks=4)
DEFAULT_HANDLE = 600.0
MOST_KEPT = 10000  # answers kept per process, whatever slugs are asked for


@dataclass(frozen=True)
class Availability:
    state: str  # available | busy | closed
    local: bool
    opens_at: datetime | None
    wait_seconds: int | None
    zone: ZoneInfo  # where the message's times are written: the home library's, else the consortium's

    def message(self, language: str) -> str:
        with translation.override(language):
            if self.state == "available":
                return gettext("A librarian is available.")
            if self.state == "busy":
                minutes = max(1, math.ceil((self.wait_seconds or 0) / 60))
                return ngettext("Busy: about %(minutes)d minute.", "Busy: about %(minutes)d minutes.",
                                minutes) % {"minutes": minutes}
            if self.opens_at is None:
                return gettext("Closed. Leave your question and a librarian will answer by email.")
            local = self.opens_at.astimezone(self.zone)
            return gettext("Closed, opens %(when)s.") % {"when": formats.date_format(local, "l G:i")}

    def as_json(self, language: str) -> dict[str, Any]:
        return {"state": self.state, "local": self.local,
                "opens_at": self.opens_at.isoformat() if self.opens_at else None,
                "wait_seconds": self.wait_seconds, "message": self.message(language)}


def availability(consortium: Consortium, library_slug: str | None, now: datetime, language: str = "") -> Availability:
    """What a chat from this library's patrons, started now, would meet. ServiceError not_found: no such library."""
    picture = structure_of(consortium)
    home, _found_by = home_library_resolve(consortium, library_slug, None, picture)
    zone = ZoneInfo(home.timezone if home is not None and home.timezone else consortium.timezone)
    plan = picture.plan_for(home, consortium)
    if not plan:
        return Availability("closed", False, None, None, zone)
    queues = {q for step in plan for q in step.queues}
    situation = situation_for(consortium, now, queues, picture)
    chat = router.WaitingChat(id="", plan=plan, step_index=-1, step_entered_at=None, arrived_at=now,
                              created_at=now, language=language if language != "en" else "")
    decision = router.decide(chat, situation)
    local = home is not None and router.cannot_answer(router.Step("local", (home.slug,), None), situation,
                                                      chat.language, last_step=True) is None
    if decision.state == "unstaffed":
        return Availability("closed", False, _next_opening(plan, situation), None, zone)
    if decision.offers:
        return Availability("available", local, None, 0, zone)
    return Availability("busy", local, None, _expected_wait(consortium, plan, situation, now), zone)


def _next_opening(plan: tuple[router.Step, ...], situation: router.Situation) -> datetime | None:
    """The next time a closed queue of the plan opens (its next change of hours or shifts)."""
    times = [change for step in plan for q in step.queues
             if q not in situation.open_queues and (change := situation.next_change.get(q)) is not None]
    return min(times, default=None)


def _expected_wait(consortium: Consortium, plan: tuple[router.Step, ...], situation: router.Situation,
                   now: datetime) -> int:
    """The chats already waiting, then this one, each taking a slot of the librarians who could answer."""
    audience = router.audience(plan, len(plan) - 1)
    slots = {lib.id: lib.capacity for q in audience if q in situation.open_queues
             for lib in situation.present.get(q, ())}
    ahead = Chat.objects.filter(consortium=consortium, state=ChatState.QUEUED).count()
    wait = conditional_wait(ahead, sum(slots.values()), handle_seconds(consortium, now))
    # Nobody with a slot (every librarian of the plan at a full load of transfers): as long as a chat may wait.
    return consortium.max_wait if math.isinf(wait) else round(wait)


_handle: dict[int, tuple[float, float]] = {}


def handle_seconds(consortium: Consortium, now: datetime) -> float:
    """The mean time from accepted to ended of the last weeks' chats, read at most every ten minutes."""
    kept = _handle.get(consortium.pk)
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    since = now - HANDLE_SAMPLE
    duration = ExpressionWrapper(F("ended_at") - F("accepted_at"), output_field=DurationField())
    found = (Chat.objects.filter(consortium=consortium, arrived_at__gte=since, accepted_at__isnull=False,
                                 ended_at__isnull=False).aggregate(mean=Avg(duration))["mean"])
    seconds = found.total_seconds() if found else DEFAULT_HANDLE
    _handle[consortium.pk] = (time.monotonic() + HANDLE_FRESH_FOR, seconds)
    return seconds


# --- kept answers ---------------------------------------------------------------------------------------------

_kept: dict[tuple[str, str, str], tuple[float, Consortium, dict[str, Any]]] = {}
_kept_lock = threading.Lock()


def cached(slug: str, library: str, language: str) -> tuple[Consortium, dict[str, Any]] | None:
    """The answer worked out less than FRESH_FOR seconds ago in this process, with its consortium."""
    kept = _kept.get((slug, library, language))
    if kept is None or kept[0] <= time.monotonic():
        return None
    return kept[1], kept[2]


def keep(slug: str, library: str, language: str, consortium: Consortium, answer: dict[str, Any]) -> None:
    with _kept_lock:
        if len(_kept) >= MOST_KEPT:
            _kept.clear()
        _kept[(slug, library, language)] = (time.monotonic() + FRESH_FOR, consortium, answer)


def forget() -> None:
    """Tests: start from nothing kept."""
    with _kept_lock:
        _kept.clear()
    _handle.clear()


# --- the kept answer, served before Django ----------------------------------------------------------------------

_PATH = re.compile(r"^/api/v1/([-a-zA-Z0-9_]{1,50})/availability$")
# The headers Django's middleware gives the same answer (SecurityMiddleware, XFrameOptionsMiddleware, and
# routing.api.base.cors): a kept answer served here must look exactly like one served by the view.
_HEADERS = [(b"content-type", b"application/json"), (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
            (b"cross-origin-opener-policy", b"same-origin")]
_CORS = [(b"access-control-allow-headers", b"Content-Type, Authorization"),
         (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"), (b"access-control-max-age", b"600"),
         (b"vary", b"Origin")]


class KeptAvailabilityMiddleware:
    """ASGI: a GET of the availability that this process answered less than FRESH_FOR seconds ago is
    answered from memory, without Django's thread and middleware (every open widget polls it: issue 18's
    benchmark, docs/benchmarks.md). Anything else (no kept answer, another method, a query it does not
    know, an Origin the consortium does not allow) goes on to Django, which answers as the view does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and (match := _PATH.match(scope["path"])):
            answer = self._kept(match[1], scope)
            if answer is not None:
                status, headers, body = answer
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _kept(slug: str, scope: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if set(query) - {"library", "lang"} or any(len(v) != 1 for v in query.values()):
            return None
        library, language = query.get("library", [""])[0], query.get("lang", [""])[0] or "en"
        found = cached(slug, library, language)
        if found is None:
            return None
        consortium, answer = found
        origin = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"origin"), None)
        if not origin_allowed(origin, consortium):
            return None
        body = json.dumps(answer).encode()
        headers = [*_HEADERS, (b"cache-control", f"public, max-age={int(FRESH_FOR)}".encode()),
                   (b"content-length", str(len(body)).encode())]
        if origin and not own_origin(origin):
            headers += [(b"access-control-allow-origin", origin.encode("latin-1")), *_CORS]
        return 200, headers, body
