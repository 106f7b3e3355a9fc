"""Outcomes partition the chats (routing/outcomes.py): each chat is exactly one, whatever happened to it.

The chats here are made by the real services with an injected clock (no row is written by hand), and
the property test drives random sequences of routing events through them: start, patron joins,
librarian online, accept, librarian lost (console closed past the reconnect grace), patron lost,
transfer, escalation (time passing, the timer's sweep), end, the question form. These tests are not
marked `postgres`: they run in the embedded suite on SQLite and again, unchanged, in the PostgreSQL
stage of .ci/run (where DATABASE_URL is set), since the outcome is a SQL CASE each engine evaluates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import hypothesis
import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coordination import board, statistics
from libraries.models import StaffProfile
from routing import metrics, outcomes
from routing.models import Chat, ChatState, Offer
from routing.outcomes import Counts, Outcome
from routing.services import chats, followups, offers, presence, sweeps, transfers
from routing.services.common import ServiceError
from tests.factories import PASSWORD
from tests.routing.routing_helpers import T0, World, at, fresh, go_online, patron_joins, staff, start, world

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("quiet")]

NY = ZoneInfo("America/New_York")


def outcome_of(chat: Chat) -> str:
    return Chat.objects.filter(pk=chat.pk).annotate(o=outcomes.outcome_of()).values_list("o", flat=True).get()


def counts(w: World) -> Counts:
    return outcomes.count(Chat.objects.filter(consortium=w.consortium))[None]


def lose_librarian(profile: StaffProfile, now: datetime) -> datetime:
    """The console closed and the reconnect grace ran out: the timer takes the librarian's chats back."""
    presence.staff_disconnected(f"staff-{profile.user.username}", now)
    later = now + timedelta(seconds=profile.library.consortium.reconnect_grace + 1)
    sweeps.due_sweep(later)
    return later


def lose_patron(chat: Chat, now: datetime) -> datetime:
    presence.patron_disconnected(f"patron-{chat.pk}", now)
    later = now + timedelta(seconds=chat.consortium.patron_grace + 1)
    sweeps.due_sweep(later)
    return later


def test_the_issue_20_sequence_counts_each_chat_once() -> None:
    """Two chats answered, then their librarian lost and then their patron: state `abandoned`, outcome
    answered. Two unstaffed. The page used to say 2 answered, 2 abandoned, 2 unstaffed of 4."""
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    answered = []
    for i in range(2):
        chat = start(w.consortium, at(i), library_slug="home")
        patron_joins(chat, at(i))
        offers.chat_accept(lena, chat.pk, at(5 + i))
        answered.append(chat)
    now = lose_librarian(lena, at(10))
    for chat in answered:
        now = lose_patron(chat, now)
        assert fresh(chat).state == ChatState.ABANDONED
        assert outcome_of(chat) == Outcome.ANSWERED
    unstaffed = [start(w.consortium, now + timedelta(seconds=i), library_slug="home") for i in range(2)]
    assert {fresh(c).state for c in unstaffed} == {ChatState.UNSTAFFED}, "nobody is present any more"
    assert counts(w) == Counts(answered=2, unstaffed=2)
    report = statistics.report(w.consortium, statistics.Period(T0.astimezone(NY).date(), T0.astimezone(NY).date(), NY))
    assert report.outcomes == Counts(answered=2, unstaffed=2) and report.outcomes.unanswered == 2


def test_each_outcome_by_its_path_through_the_services() -> None:
    w = world(max_wait=300)
    hugo = staff(w.hub, "hugo", queues=[w.statewide])
    go_online(hugo, at(-60))
    # Abandoned: the patron closed the page before anyone accepted, within max_wait.
    left = start(w.consortium, at(0), library_slug="home")
    patron_joins(left, at(0))
    lose_patron(left, at(30))
    # Also abandoned: the patron ended it while waiting.
    ended = start(w.consortium, at(1), library_slug="home")
    chats.chat_end(ended.pk, at(20), by="patron")
    # Withdrawn: waited past max_wait, then the patron left a question with the form offered then.
    form = start(w.consortium, at(2), library_slug="home")
    patron_joins(form, at(2))
    # And withdrawn: waited past max_wait, then the patron went away.
    late = start(w.consortium, at(3), library_slug="home")
    patron_joins(late, at(3))
    sweeps.due_sweep(at(310))
    assert fresh(form).max_wait_passed and fresh(late).max_wait_passed
    followups.question_leave(consortium=w.consortium, question="q", email="p@example.org", chat=fresh(form),
                             now=at(320))
    lose_patron(late, at(330))
    # Open: still waiting.
    waiting = start(w.consortium, at(400), library_slug="home")
    # Answered, then transferred and ended: answered.
    kept = start(w.consortium, at(401), library_slug="home")
    offers.chat_accept(hugo, kept.pk, at(405))
    lena = staff(w.home, "lena")
    go_online(lena, at(406))
    transfers.chat_transfer(hugo, kept.pk, at(410), to_librarian="lena")
    chats.chat_end(kept.pk, at(420), by="patron")
    # Unstaffed: nobody present anywhere.
    for who in (hugo, lena):
        presence.presence_set(who, "away", at(430))
    nobody = start(w.consortium, at(440), library_slug="home")

    got = {c.pk: outcome_of(c) for c in (left, ended, form, late, waiting, kept, nobody)}
    assert got == {left.pk: "abandoned", ended.pk: "abandoned", form.pk: "withdrawn", late.pk: "withdrawn",
                   waiting.pk: "open", kept.pk: "answered", nobody.pk: "unstaffed"}
    assert counts(w) == Counts(answered=1, abandoned=2, withdrawn=2, unstaffed=1, open=1)


def test_the_chats_report_and_metrics_use_the_same_outcomes(client: Client) -> None:
    w = world()
    lena = staff(w.home, "lena")
    coordinator = staff(w.hub, "cora", role="coordinator")
    go_online(lena, at(-60))
    chat = start(w.consortium, at(0), library_slug="home")
    patron_joins(chat, at(0))
    offers.chat_accept(lena, chat.pk, at(5))
    lose_patron(chat, lose_librarian(lena, at(10)))  # abandoned by state, answered by outcome
    start(w.consortium, at(200), library_slug="home")  # unstaffed
    client.login(username=coordinator.user.username, password=PASSWORD)
    lines = b"".join(client.get("/api/v1/vr/reports/chats.csv").streaming_content).decode().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert [(r["outcome"], r["state"]) for r in rows] == [("answered", "abandoned"), ("unstaffed", "unstaffed")]
    text = metrics.render(metrics.Figures(at(300)))
    today = {line.split('outcome="')[1].split('"')[0]: float(line.split()[-1])
             for line in text.splitlines() if line.startswith('vr_chats_today{consortium="vr"')}
    assert today == {"answered": 1, "abandoned": 0, "withdrawn": 0, "unstaffed": 1, "open": 0, "self_served": 0}


def test_counts_refuse_what_is_not_an_outcome() -> None:
    with pytest.raises(ValueError, match="not outcomes"):
        Counts.of({"answered": 1, "ended": 2})


# --- the property ----------------------------------------------------------------------------------------


LIBRARIANS = ("lena", "pia", "hugo")  # of the home library, its partner, and the hub (statewide queue)
CHAT = st.integers(0, 5)  # the n-th chat started (modulo how many there are); nothing when none yet
WHO = st.sampled_from(LIBRARIANS)
EVENTS = st.one_of(
    st.tuples(st.just("start"), st.sampled_from(["home", "partner", None]), st.sampled_from(["", "", "es"])),
    st.tuples(st.just("start"), st.sampled_from(["home", "partner", None]), st.sampled_from(["", "", "es"])),
    st.tuples(st.just("join"), CHAT),
    st.tuples(st.just("online"), WHO),
    st.tuples(st.just("away"), WHO),
    # Accept: by a librarian the chat is offered to now (the k-th of them), else by the one named.
    st.tuples(st.just("accept"), WHO, CHAT, st.integers(0, 2)),
    st.tuples(st.just("accept"), WHO, CHAT, st.integers(0, 2)),
    # A librarian lost, transferring or ending: the one holding the chat, when someone does, else the one named.
    st.tuples(st.just("librarian_lost"), WHO, CHAT),
    st.tuples(st.just("librarian_lost"), WHO, CHAT),
    st.tuples(st.just("patron_lost"), CHAT, st.booleans()),
    st.tuples(st.just("transfer"), WHO, CHAT, st.sampled_from(["statewide", *LIBRARIANS])),
    st.tuples(st.just("end"), CHAT, st.sampled_from(["patron", "librarian"])),
    st.tuples(st.just("question_form"), CHAT),
)
# Each event comes this many seconds after the one before; the timer sweeps in between, so steps
# time out (escalation), max_wait passes, offers expire and graces run out as time goes by.
STEPS = st.lists(st.tuples(st.integers(0, 150), EVENTS), min_size=3, max_size=30)
FIRST_CHATS = st.lists(st.sampled_from(["home", "partner", None]), min_size=1, max_size=3)


CHAT_ARG = {"join": 0, "accept": 1, "librarian_lost": 1, "patron_lost": 0, "transfer": 1, "end": 0,
            "question_form": 0}


@dataclass
class Run:
    w: World
    people: dict[str, StaffProfile]
    now: datetime = T0
    started: list[Chat] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)  # what the services said yes to: the oracle for "answered"
    unstaffed: set[str] = field(default_factory=set)

    def chat(self, n: int) -> Chat | None:
        return fresh(self.started[n % len(self.started)]) if self.started else None

    def apply(self, event: tuple[Any, ...]) -> str:
        """Apply one event; what came of it ("done", or "no chat yet"), for the test's statistics."""
        kind, *args = event
        now = self.now
        if kind == "start":
            chat = start(self.w.consortium, now, library_slug=args[0], language=args[1])
            self.started.append(chat)
            if chat.state == ChatState.UNSTAFFED:
                self.unstaffed.add(chat.pk)
            return "done"
        if kind in ("online", "away"):
            who = self.people[args[0]]
            if kind == "online":
                go_online(who, now)
            else:
                presence.presence_set(who, "away", now)
            return "done"
        chat = self.chat(args[CHAT_ARG[kind]])
        if chat is None:
            return "no chat yet"
        holder = StaffProfile.objects.filter(pk=chat.librarian_id).first()
        if kind == "librarian_lost":
            self.now = lose_librarian(holder or self.people[args[0]], now)
            return "done" if holder is None else "holder lost"
        if kind == "join":
            patron_joins(chat, now)
        elif kind == "accept":
            offered = sorted(Offer.objects.filter(chat=chat, status=Offer.Status.OPEN)
                             .values_list("librarian_id", flat=True))
            who = self.people[args[0]]
            if offered:
                who = StaffProfile.objects.get(pk=offered[args[2] % len(offered)])
            offers.chat_accept(who, chat.pk, now)
            self.accepted.add(chat.pk)
        elif kind == "patron_lost":
            presence.patron_disconnected(f"patron-{chat.pk}", now)
            if args[1]:  # and stays away past the patron grace
                self.now = now + timedelta(seconds=self.w.consortium.patron_grace + 1)
                sweeps.due_sweep(self.now)
        elif kind == "transfer":
            target = args[2]
            holder = holder or self.people[args[0]]
            if target == "statewide":
                transfers.chat_transfer(holder, chat.pk, now, queue=target)
            else:
                transfers.chat_transfer(holder, chat.pk, now, to_librarian=target)
        elif kind == "end":
            if args[1] == "librarian" and holder is None:
                return "nobody holds it"
            chats.chat_end(chat.pk, now, by=args[1], librarian=holder if args[1] == "librarian" else None)
        elif kind == "question_form":
            followups.question_leave(consortium=self.w.consortium, question="q", email="p@example.org",
                                     chat=chat, now=now)
        return "done"

    def check(self) -> Counts:
        """The counts at this instant: none negative, adding up to the chats, answered as the services said."""
        found = counts(self.w)
        assert all(n >= 0 for _, n in found.items()), found
        assert found.total == len(self.started) == Chat.objects.filter(consortium=self.w.consortium).count()
        by_outcome: dict[str, set[str]] = {}
        for pk, o in Chat.objects.filter(consortium=self.w.consortium).annotate(
                o=outcomes.outcome_of()).values_list("pk", "o"):
            by_outcome.setdefault(o, set()).add(pk)
        # Answered once accepted, whatever came after: never taken back by a loss, a transfer or an end.
        assert by_outcome.get("answered", set()) == self.accepted
        assert by_outcome.get("unstaffed", set()) == self.unstaffed
        live = set(Chat.objects.filter(consortium=self.w.consortium, state=ChatState.QUEUED)
                   .values_list("pk", flat=True))
        assert by_outcome.get("open", set()) == live - self.accepted
        return found


def people_of(w: World) -> dict[str, StaffProfile]:
    return {"lena": staff(w.home, "lena", languages=["en", "es"]), "pia": staff(w.partner, "pia"),
            "hugo": staff(w.hub, "hugo", queues=[w.statewide])}


@pytest.fixture
def property_world() -> tuple[World, dict[str, StaffProfile]]:
    w = world(local_timeout=40, partner_timeout=40, max_wait=240, offer_timeout=20)
    return w, people_of(w)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(online=st.sets(WHO, min_size=1), first=FIRST_CHATS, steps=STEPS)
def test_for_any_sequence_of_routing_events_the_outcomes_add_up(
        property_world: tuple[World, dict[str, StaffProfile]], online: set[str], first: list[str | None],
        steps: list[tuple[int, tuple[Any, ...]]]) -> None:
    w, people = property_world
    # Each example in a transaction of its own, rolled back: the next one starts from the same world.
    with transaction.atomic():
        run = Run(w, people)
        for who in sorted(online):
            go_online(people[who], T0 - timedelta(seconds=60))
        for home in first:  # a few chats to begin with, their patrons there
            run.apply(("start", home, ""))
            patron_joins(run.started[-1], run.now)
        for pause, event in steps:
            run.now += timedelta(seconds=pause)
            sweeps.due_sweep(run.now)  # the timer, as it runs between events
            try:
                hypothesis.event(f"{event[0]}: {run.apply(event)}")
            except ServiceError:
                hypothesis.event(f"{event[0]}: refused")  # not offered, not held, over: nothing changed
            run.check()
        found = run.check()
        for outcome, n in found.items():
            if n:
                hypothesis.event(f"outcome seen: {outcome}")
        # Every page that counts chats says the same, and adds up.
        day = T0.astimezone(NY).date()
        last = run.now.astimezone(NY).date()
        report = statistics.report(w.consortium, statistics.Period(day, last, NY))
        assert report.outcomes == found
        assert sum((o for _, o, _ in report.per_library), Counts()) + report.outcomes_by_home.get(None, Counts()) \
            == found
        for library in (w.home, w.partner):
            who = statistics.who_answered(report.everything, library)
            assert min(who.own, who.consortium, who.unanswered, *(n for _, n in who.partners)) >= 0
            assert who.own + sum(n for _, n in who.partners) + who.consortium + who.unanswered == who.total
        if last == day:
            today = board.board_snapshot(w.consortium, run.now)["today"]
            assert today["arrived"] == found.total == sum(today[o.value] for o in Outcome)
            assert all(today[o.value] == n for o, n in found.items())
        transaction.set_rollback(True)


def test_a_period_with_no_chats_counts_zero() -> None:
    w = world()
    report = statistics.report(w.consortium, statistics.Period(date(2026, 1, 1), date(2026, 1, 2), NY))
    assert report.outcomes == Counts() and report.outcomes.total == 0
