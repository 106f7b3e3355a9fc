"""A generated past for the demo consortium: weeks of finished chats, surveys, follow-ups and a rota.

The demo (`python3 dev.py demo`) would otherwise open on empty statistics, an empty coverage map
and a board of zeros. This writes what a state service's weeks look like, deterministically from a
seed, with the consortium's own libraries, partners, queues, hours and staff:

- arrivals by hour of the week: busy weekday afternoons, quiet nights, lighter weekends; a Spanish
  share that is larger for the libraries that serve more Spanish speakers (`SPANISH`);
- each chat routed along its home library's real plan (routing.plan.default_plan): answered at home
  while the home library is open, by a partner, or by the consortium step's queue (a Spanish chat by
  someone who speaks Spanish), after a wait that fits the step's timeouts; or abandoned within
  `max_wait`, withdrawn after it (with a follow-up from the question form), or unstaffed (mostly at
  night); all of them over, so the timer has nothing to do with them;
- messages, the trace, the accepted offer, the librarian's classification, surveys, follow-ups
  (referrals and question forms, the recent ones still open), and rota shifts on the shared queues
  (only when the consortium has none: a coordinator's rota is never touched).

Rows are written with bulk_create. Generated chats and follow-ups are recognisable by their id
(`ID_PREFIX` and a length no `new_id()` has), so loading again replaces the generated past, and
only it, with one ending now. Nothing here checks which database it writes to: the management
command (`demo_history`) refuses a production database.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models.functions import Length

from consortium.models import Consortium
from libraries.hours import Schedule, is_open, schedule_for
from libraries.models import Library, Queue, Shift, ShiftAssignment, StaffProfile
from routing.models import Chat, ChatState, Message, Offer, Survey, Ticket, TraceEvent
from routing.plan import default_plan, plan_to_json
from routing.router import Step

ID_PREFIX = "demohist"
ID_LENGTH = 20  # new_id() makes 16 characters: a generated id is never a real one
BATCH = 2000

# Chats per weekday (Monday first) of a state service of about a dozen library systems.
PER_DAY = (96, 92, 90, 84, 66, 34, 30)
# Relative arrivals by local hour: weekdays peak in the afternoon; weekends later and flatter.
WEEKDAY_HOURS = (0.5, 0.3, 0.2, 0.15, 0.15, 0.3, 0.6, 1.3, 2.8, 4.6, 5.8, 6.2, 6.0, 7.2, 7.8, 7.6, 6.6, 5.2,
                 4.2, 3.9, 3.4, 2.6, 1.8, 1.0)
WEEKEND_HOURS = (0.7, 0.4, 0.3, 0.2, 0.2, 0.2, 0.4, 0.8, 1.6, 2.8, 4.0, 4.8, 5.2, 5.6, 5.8, 5.4, 4.8, 4.0,
                 3.6, 3.4, 3.0, 2.4, 1.6, 1.0)
# Home libraries by how many patrons ask (others: DEFAULT_WEIGHT); None: no home library found.
WEIGHTS = {"miami": 18, "tampa": 14, "orlando": 14, "jacksonville": 10, "stpete": 8, "fort-myers": 7, "uf": 6,
           "alachua": 5, "tallahassee": 5, "pensacola": 4, "panama-city": 3, "hillsborough-law": 2}
DEFAULT_WEIGHT = 5
NO_HOME_WEIGHT = 6
SPANISH = {"miami": 0.3, "orlando": 0.12, "tampa": 0.1, "fort-myers": 0.08}
SPANISH_DEFAULT = 0.04

QUESTIONS = {
    "en": [("library cards", "How do I get a library card if I just moved here?"),
           ("ebooks", "The ebook app says my card is blocked, what do I do?"),
           ("genealogy", "I'm looking for my great-grandfather's obituary from the 1940s."),
           ("tax forms", "Do you have the state tax forms or do I print them?"),
           ("databases", "Where can I find peer-reviewed articles on sea-level rise?"),
           ("job help", "Can someone help me with my resume?"),
           ("local history", "When was the old downtown library built?"),
           ("catalog", "Is this book checked out everywhere?"),
           ("interlibrary loan", "Can I borrow a book you don't own?"),
           ("printing", "How do I print from my phone?"),
           ("legal", "Where can I find the eviction forms for the county court?"),
           ("homework", "I need three sources about the Seminole Wars for school.")],
    "es": [("library cards", "¿Cómo saco una tarjeta de la biblioteca?"),
           ("ebooks", "¿Tienen libros electrónicos en español?"),
           ("job help", "Necesito ayuda para buscar trabajo en línea."),
           ("tax forms", "¿Dónde encuentro los formularios de impuestos?"),
           ("homework", "Mi hijo necesita información sobre los huracanes para la escuela."),
           ("legal", "¿Dónde busco ayuda legal gratuita?")],
}
NAMES = ("Alex", "Jordan", "Maria", "Sam", "Chris", "Taylor", "Luis", "Ana", "Pat", "Jamie", "Rosa", "Kim", "")


@dataclass(frozen=True)
class Summary:
    chats: int
    outcomes: dict[str, int]
    surveys: int
    followups: int
    shifts: int
    first: date
    last: date


@dataclass
class _Rows:
    chats: list[Chat] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    trace: list[TraceEvent] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    surveys: list[Survey] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)


@dataclass(frozen=True)
class _Home:
    library: Library | None
    plan: tuple[Step, ...]
    schedule: Schedule | None  # the home library's own hours (None: no library)


class _Generator:
    def __init__(self, consortium: Consortium, now: datetime, weeks: int, seed: int) -> None:
        self.c = consortium
        self.now = now
        self.zone = ZoneInfo(consortium.timezone)
        self.rng = random.Random(seed)
        self.weeks = weeks
        self.rows = _Rows()
        self.outcomes: dict[str, int] = defaultdict(int)
        self.serial = 0
        self.subject: dict[str, str] = {}
        self.ticket_serial = 0
        libraries = list(Library.objects.filter(consortium=consortium, is_active=True).order_by("slug"))
        queues = {q.library_id: q for q in Queue.objects.filter(consortium=consortium, kind=Queue.Kind.LOCAL)
                  .prefetch_related("weekly", "closures", "special_hours")}
        self.homes = [_Home(lib, default_plan(lib, consortium),
                            schedule_for(queues[lib.pk]) if lib.pk in queues else None) for lib in libraries]
        self.homes.append(_Home(None, default_plan(None, consortium), None))
        self.weights = [WEIGHTS.get(h.library.slug, DEFAULT_WEIGHT) if h.library else NO_HOME_WEIGHT
                        for h in self.homes]
        roles = [StaffProfile.Role.LIBRARIAN, StaffProfile.Role.LIBRARY_ADMIN]  # coordinators do not answer here
        staff = list(StaffProfile.objects.filter(library__consortium=consortium, is_active=True, role__in=roles)
                     .select_related("user", "library").prefetch_related("queues").order_by("user__username"))
        self.by_library: dict[int, list[StaffProfile]] = defaultdict(list)
        self.by_queue: dict[str, list[StaffProfile]] = defaultdict(list)
        for profile in staff:
            self.by_library[profile.library_id].append(profile)
            self.by_queue[profile.library.slug].append(profile)
            for queue in profile.queues.all():
                self.by_queue[queue.slug].append(profile)
        self.slug_to_library = {lib.slug: lib for lib in libraries}

    # --- arrivals ----------------------------------------------------------------------------------------

    def run(self) -> tuple[date, date]:
        last = self.now.astimezone(self.zone).date()
        first = last - timedelta(weeks=self.weeks) + timedelta(days=1)
        # Chats still going on would be routed by the timer: the generated past stops a while ago.
        until = self.now - timedelta(minutes=45)
        day = first
        while day <= last:
            weekday = day.weekday()
            shape = WEEKDAY_HOURS if weekday < 5 else WEEKEND_HOURS
            scale = PER_DAY[weekday] / sum(shape)
            for hour in range(24):
                for _ in range(_poisson(self.rng, shape[hour] * scale)):
                    local = datetime(day.year, day.month, day.day, hour, self.rng.randrange(60),
                                     self.rng.randrange(60), tzinfo=self.zone)
                    if local < until:
                        self.chat(local)
            day += timedelta(days=1)
        return first, last

    def chat(self, local: datetime) -> None:
        home = self.rng.choices(self.homes, self.weights)[0]
        slug = home.library.slug if home.library else ""
        language = "es" if self.rng.random() < SPANISH.get(slug, SPANISH_DEFAULT) else "en"
        hour = local.hour
        night = hour < 7 or hour >= 23
        fringe = hour in (7, 8, 21, 22) or local.weekday() == 6
        unstaffed = 0.3 if night else 0.06 if fringe else 0.01
        busy = 13 <= hour < 17 and local.weekday() < 5
        roll = self.rng.random()
        if roll < unstaffed or not home.plan:
            self.unstaffed(local, home, language)
        elif roll < unstaffed + (0.09 if busy else 0.06):
            self.abandoned(local, home, language)
        elif roll < unstaffed + (0.13 if busy else 0.08):
            self.withdrawn(local, home, language)
        elif roll < unstaffed + (0.16 if busy else 0.10):
            self.self_served(local, home, language)
        else:
            self.answered(local, home, language)

    # --- one chat ----------------------------------------------------------------------------------------

    def _new(self, local: datetime, home: _Home, language: str) -> Chat:
        self.serial += 1
        subject, question = self.rng.choice(QUESTIONS[language])
        at = local.astimezone(self.zone)
        name = self.rng.choice(NAMES)
        chat = Chat(
            id=f"{ID_PREFIX}{self.serial:0{ID_LENGTH - len(ID_PREFIX)}d}", consortium=self.c,
            home_library=home.library, home_found_by="library" if home.library else "none", question=question,
            language=language, patron_name=name,
            patron_email=f"{name.lower() or 'patron'}{self.serial}@example.org" if self.rng.random() < 0.5 else "",
            token_hash=hashlib.sha256(f"{ID_PREFIX}{self.serial}".encode()).hexdigest(),
            created_at=at, arrived_at=at, last_activity_at=at, plan=plan_to_json(home.plan), last_seq=1,
            patron_joined=True, subjects=[], state=ChatState.ENDED)
        self.subject[chat.pk] = subject  # the tag its librarian gives it, if answered
        self.rows.chats.append(chat)
        self.rows.messages.append(Message(chat=chat, seq=1, sender=Message.Sender.PATRON, name=name, body=question,
                                          at=at))
        self._trace(chat, at, "created", home_library=home.library.slug if home.library else None,
                    found_by=chat.home_found_by, language=language)
        self._trace(chat, at, "routing", steps=[s.name for s in home.plan])
        return chat

    def _trace(self, chat: Chat, at: datetime, kind: str, **data: Any) -> None:
        self.rows.trace.append(TraceEvent(chat=chat, at=at, kind=kind, data=data))

    def _say(self, chat: Chat, at: datetime, sender: str, body: str, name: str = "",
             librarian: StaffProfile | None = None) -> None:
        chat.last_seq += 1
        self.rows.messages.append(Message(chat=chat, seq=chat.last_seq, sender=sender, body=body, at=at, name=name,
                                          librarian=librarian))

    def _steps_until(self, chat: Chat, plan: tuple[Step, ...], index: int, at: datetime) -> datetime:
        """Enter steps 0..index one after another (each after its wait): the trace and the chat's step."""
        entered = at
        for i in range(index + 1):
            if i:
                wait = plan[i - 1].wait or 0
                entered = entered + timedelta(seconds=wait)
                self._trace(chat, entered, "escalated", **{"from": plan[i - 1].name, "reason": "timeout"})
            self._trace(chat, entered, "step_entered", step=plan[i].name, queues=list(plan[i].queues))
        chat.step_index = index
        chat.step_serial = index + 1
        chat.step_entered_at = entered
        return entered

    def _step_reached(self, plan: tuple[Step, ...], waited: float) -> int:
        elapsed = 0.0
        for i, step in enumerate(plan):
            if step.wait is None or waited < elapsed + step.wait:
                return i
            elapsed += step.wait
        return len(plan) - 1

    def _answerer(self, home: _Home, local: datetime, language: str) -> tuple[int, StaffProfile] | None:
        """Which step answers and who: home while it is open, else (or sometimes) a partner or the consortium."""
        plan = home.plan
        options: list[tuple[float, int, list[StaffProfile]]] = []
        for index, step in enumerate(plan):
            people = [p for q in step.queues for p in self.by_queue.get(q, [])]
            if language == "es" and index < len(plan) - 1:
                people = [p for p in people if "es" in (p.languages or [])]
            if not people:
                continue
            if step.name == "local":
                open_now = home.schedule is not None and is_open(home.schedule, local)
                weight = 0.68 if open_now else 0.0
            elif step.name == "partners":
                weight = 0.14
            else:
                weight = 0.18 if index == len(plan) - 1 else 0.1
                if language == "es":
                    people = [p for p in people if "es" in (p.languages or [])] or people
            if weight:
                options.append((weight, index, sorted(set(people), key=lambda p: p.user.username)))
        if not options:
            return None
        _, index, people = self.rng.choices(options, [o[0] for o in options])[0]
        return index, self.rng.choice(people)

    def _wait(self, plan: tuple[Step, ...], index: int, local: datetime) -> int:
        before = sum(step.wait or 0 for step in plan[:index])
        here = plan[index].wait
        busy = 1.8 if 13 <= local.hour < 17 and local.weekday() < 5 else 1.0
        if here is not None:
            return before + max(3, min(here - 1, int(self.rng.expovariate(1 / (here * 0.35 * busy)))))
        # The last step: answered before max_wait (a chat answered after it would have max_wait_passed set).
        room = max(3, self.c.max_wait - 1 - before)
        return before + max(3, min(room, int(self.rng.expovariate(1 / (50 * busy)))))

    def answered(self, local: datetime, home: _Home, language: str) -> None:
        found = self._answerer(home, local, language)
        if found is None:
            self.unstaffed(local, home, language)
            return
        index, librarian = found
        chat = self._new(local, home, language)
        plan = home.plan
        at = chat.arrived_at
        wait = self._wait(plan, index, local)
        self._steps_until(chat, plan, index, at)
        accepted = at + timedelta(seconds=wait)
        chat.answered_by = librarian
        chat.answered_step = plan[index].name
        chat.accepted_step_index = index
        chat.accepted_at = chat.first_accepted_at = accepted
        queue = next((q for q in plan[index].queues if librarian in self.by_queue.get(q, [])), plan[index].queues[0])
        self.rows.offers.append(Offer(chat=chat, librarian=librarian, step_serial=chat.step_serial,
                                      step=plan[index].name, queue=queue, mode="broadcast",
                                      created_at=chat.step_entered_at or at,
                                      status=Offer.Status.ACCEPTED, closed_at=accepted))
        self._trace(chat, accepted, "accepted", librarian=librarian.pk, username=librarian.user.username,
                    library=librarian.library.slug, step=plan[index].name, queue=queue, waited=wait)
        who = f"{librarian.display_name}, {librarian.library.name}"
        self._say(chat, accepted, Message.Sender.SYSTEM, f"{who} joined the chat.")
        hello = "¡Hola! Con gusto le ayudo." if language == "es" else "Hi! Happy to help with that."
        self._say(chat, accepted + timedelta(seconds=20), Message.Sender.LIBRARIAN, hello, librarian.display_name,
                  librarian)
        self._say(chat, accepted + timedelta(seconds=70), Message.Sender.PATRON,
                  "Gracias." if language == "es" else "Thanks!", chat.patron_name)
        minutes = min(45.0, self.rng.lognormvariate(2.0, 0.6))
        ended = accepted + timedelta(minutes=minutes)
        self._say(chat, ended - timedelta(seconds=30), Message.Sender.LIBRARIAN,
                  "Aquí tiene el enlace y los pasos." if language == "es" else "Here is the link and the steps.",
                  librarian.display_name, librarian)
        chat.last_activity_at = ended - timedelta(seconds=30)
        roll = self.rng.random()
        if roll < 0.015:
            # Its librarian's console closed, then the patron left too: `abandoned` by state, answered all the same.
            chat.state = ChatState.ABANDONED
            self._trace(chat, ended, "requeued", reason="librarian_lost", librarian=librarian.pk)
            chat.patron_left_at = ended
            ended += timedelta(seconds=self.c.patron_grace)
            self._trace(chat, ended, "abandoned", patron_gone_since=chat.patron_left_at.isoformat())
        else:
            by = "librarian" if roll < 0.62 else "patron" if roll < 0.95 else "system"
            chat.end_reason = by if by != "system" else "idle"
            self._trace(chat, ended, "ended", by=by, reason=chat.end_reason)
            self._say(chat, ended, Message.Sender.SYSTEM, {"librarian": "The librarian ended the chat.",
                                                           "patron": "The patron ended the chat."}.get(
                by, "The chat ended after a long silence."))
        chat.ended_at = ended
        chat.read_scale = self.rng.choices((1, 2, 3, 4, 5, None), (22, 38, 20, 8, 2, 10))[0]
        chat.subjects = [self.subject[chat.pk]]
        if self.rng.random() < 0.15:
            chat.subjects.append(self.rng.choice(("catalog", "databases", "ebooks", "library cards")))
        chat.subjects = list(dict.fromkeys(chat.subjects))
        referred = self.rng.random() < 0.04 and chat.home_library is not None
        chat.outcome = "referred" if referred else self.rng.choices(("answered", "patron_left", ""), (80, 8, 12))[0]
        if referred:
            self._ticket(chat, ended, "referral", created_by=librarian)
        if self.rng.random() < 0.2:
            rating = self.rng.choices((5, 4, 3, 2, 1), (55, 25, 10, 5, 5))[0]
            comment = self.rng.choice(("", "", "", "Very helpful, thank you!", "Quick and friendly.",
                                       "Took a while to get someone."))
            self.rows.surveys.append(Survey(chat=chat, rating=rating, comment=comment,
                                            created_at=ended + timedelta(minutes=1)))
        self.outcomes["answered"] += 1

    def abandoned(self, local: datetime, home: _Home, language: str) -> None:
        chat = self._new(local, home, language)
        closed_page = self.rng.random() < 0.6
        # Over before max_wait, or the router would have marked it (max_wait_passed): a patron who closed
        # the page is abandoned only once the patron grace has run out.
        latest = self.c.max_wait - (self.c.patron_grace if closed_page else 0) - 5
        waited = self.rng.uniform(min(15, latest / 2), max(1, latest))
        self._steps_until(chat, home.plan, self._step_reached(home.plan, waited), chat.arrived_at)
        gone = chat.arrived_at + timedelta(seconds=waited)
        if closed_page:
            chat.state = ChatState.ABANDONED
            chat.patron_left_at = gone
            chat.ended_at = gone + timedelta(seconds=self.c.patron_grace)
            self._trace(chat, chat.ended_at, "abandoned", patron_gone_since=gone.isoformat())
        else:
            chat.end_reason = "patron"
            chat.ended_at = gone
            self._trace(chat, gone, "ended", by="patron", reason="patron")
            self._say(chat, gone, Message.Sender.SYSTEM, "The patron ended the chat.")
        self.outcomes["abandoned"] += 1

    def self_served(self, local: datetime, home: _Home, language: str) -> None:
        """A patron who found the answer among the suggestions while waiting (knowledge.services.chat_self_serve)."""
        chat = self._new(local, home, language)
        waited = self.rng.uniform(20, max(30, min(240, self.c.max_wait - 5)))
        self._steps_until(chat, home.plan, self._step_reached(home.plan, waited), chat.arrived_at)
        gone = chat.arrived_at + timedelta(seconds=waited)
        chat.end_reason = "self_served"
        chat.ended_at = gone
        self._trace(chat, gone, "self_served", answer=None)
        self._trace(chat, gone, "ended", by="patron", reason="self_served")
        self._say(chat, gone, Message.Sender.SYSTEM,
                  "The patron found the answer among the published answers and left.")
        self.outcomes["self_served"] += 1

    def withdrawn(self, local: datetime, home: _Home, language: str) -> None:
        chat = self._new(local, home, language)
        self._steps_until(chat, home.plan, len(home.plan) - 1, chat.arrived_at)
        passed = chat.arrived_at + timedelta(seconds=self.c.max_wait)
        chat.max_wait_passed = True
        self._trace(chat, passed, "max_wait", waited=self.c.max_wait)
        left = passed + timedelta(seconds=self.rng.randint(20, 400))
        chat.end_reason = "question_form"
        chat.ended_at = left
        self._trace(chat, left, "ended", by="patron", reason="question_form")
        self._say(chat, left, Message.Sender.SYSTEM, "The chat has ended.")
        if not chat.patron_email:
            chat.patron_email = f"patron{self.serial}@example.org"
        self._ticket(chat, left, "question_form")
        self.outcomes["withdrawn"] += 1

    def unstaffed(self, local: datetime, home: _Home, language: str) -> None:
        chat = self._new(local, home, language)
        chat.state = ChatState.UNSTAFFED
        chat.step_index = -1
        for step in home.plan:
            self._trace(chat, chat.arrived_at, "step_skipped", step=step.name, reason="nobody",
                        queues=list(step.queues))
        self._trace(chat, chat.arrived_at, "unstaffed", reason="no step could answer")
        if self.rng.random() < 0.45:
            chat.patron_email = chat.patron_email or f"patron{self.serial}@example.org"
            self._ticket(chat, chat.arrived_at + timedelta(minutes=2), "question_form")
        self.outcomes["unstaffed"] += 1

    def _ticket(self, chat: Chat, at: datetime, source: str, created_by: StaffProfile | None = None) -> None:
        self.ticket_serial += 1
        library = chat.home_library
        age = self.now - at
        status = (Ticket.Status.NEW if age < timedelta(days=2) else Ticket.Status.IN_PROGRESS
                  if age < timedelta(days=4) else self.rng.choices((Ticket.Status.ANSWERED, Ticket.Status.CLOSED),
                                                                  (85, 15))[0])
        staff = self.by_library.get(library.pk, []) if library else []
        claimer = self.rng.choice(staff) if staff and status != Ticket.Status.NEW else None
        if claimer is None:
            status = Ticket.Status.NEW  # nobody of its library to have claimed it
        answered = status == Ticket.Status.ANSWERED
        self.rows.tickets.append(Ticket(
            id=f"{ID_PREFIX}t{self.ticket_serial:0{ID_LENGTH - len(ID_PREFIX) - 1}d}", consortium=self.c,
            library=library, chat=chat, question=chat.question, transcript=f"[{at:%Y-%m-%d %H:%M}] {chat.question}",
            patron_name=chat.patron_name, patron_email=chat.patron_email or f"patron{self.serial}@example.org",
            source=source, status=status,
            created_by=created_by, claimed_by=claimer, created_at=at,
            answer="Thank you for your question: here is what we found." if answered else "",
            answered_at=at + timedelta(hours=self.rng.randint(2, 40)) if answered else None))
        self._trace(chat, at, "ticket", ticket=self.rows.tickets[-1].pk, library=library.slug if library else None,
                    source=source)

    # --- the rota ----------------------------------------------------------------------------------------

    def shifts(self, since: date) -> int:
        """Weekly shifts on the shared queues, unless the consortium has a rota already.

        Volunteers come from libraries with hours of their own: a librarian of a library open around
        the clock (the demo's way to answer at any hour) stays off the rota, so that the console's
        automatic away at the end of a shift never surprises someone trying the demo at night.
        """
        shared = list(Queue.objects.filter(consortium=self.c, kind=Queue.Kind.SHARED, is_active=True)
                      .order_by("position", "slug"))
        if not shared or Shift.objects.filter(queue__in=shared).exists():
            return 0
        local_open = {q.library_id: q.always_open for q in Queue.objects.filter(consortium=self.c,
                                                                                  kind=Queue.Kind.LOCAL)}
        made = 0
        plan = {0: [(9, 13, 2), (13, 17, 2), (17, 21, 1)], 1: [(10, 14, 1), (14, 18, 1)], 2: [(20, 24, 1)]}
        for position, queue in enumerate(shared[:3]):
            crew = sorted({p for p in self.by_queue.get(queue.slug, []) if not local_open.get(p.library_id, True)},
                          key=lambda p: p.user.username)
            if not crew:
                continue
            days = range(5) if position != 2 else range(4)
            k = 0
            for weekday in days:
                for start, end, minimum in plan[position]:
                    shift = Shift.objects.create(queue=queue, weekday=weekday, start_minute=start * 60,
                                                 end_minute=end * 60, min_librarians=minimum)
                    made += 1
                    # One fewer than the minimum now and then: the map's dashed "short" hours.
                    for _ in range(minimum if (weekday + start) % 4 else max(1, minimum - 1)):
                        ShiftAssignment.objects.get_or_create(shift=shift, librarian=crew[k % len(crew)],
                                                              defaults={"assigned_on": since})
                        k += 1
            if position == 0:
                shift = Shift.objects.create(queue=queue, weekday=5, start_minute=10 * 60, end_minute=16 * 60)
                ShiftAssignment.objects.create(shift=shift, librarian=crew[k % len(crew)], assigned_on=since)
                made += 1
        return made


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: fine for the few chats an hour holds."""
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def generated_chats(consortium: Consortium) -> Any:
    return (Chat.objects.filter(consortium=consortium, id__startswith=ID_PREFIX).annotate(id_length=Length("id"))
            .filter(id_length=ID_LENGTH))


def generated_tickets(consortium: Consortium) -> Any:
    return (Ticket.objects.filter(consortium=consortium, id__startswith=ID_PREFIX).annotate(id_length=Length("id"))
            .filter(id_length=ID_LENGTH))


def _bulk(model: Any, rows: Sequence[Any]) -> None:
    for i in range(0, len(rows), BATCH):
        model.objects.bulk_create(rows[i:i + BATCH])


def load(consortium: Consortium, now: datetime, *, weeks: int = 8, seed: int = 20) -> Summary:
    """Replace the consortium's generated past with `weeks` of it ending at `now`."""
    if weeks < 1 or weeks > 26:
        raise ValueError("weeks must be 1 to 26")
    with transaction.atomic():
        generated_tickets(consortium).delete()
        generated_chats(consortium).delete()
        gen = _Generator(consortium, now, weeks, seed)
        first, last = gen.run()
        rows = gen.rows
        _bulk(Chat, rows.chats)
        _bulk(Message, rows.messages)
        _bulk(TraceEvent, rows.trace)
        _bulk(Offer, rows.offers)
        _bulk(Survey, rows.surveys)
        _bulk(Ticket, rows.tickets)
        shifts = gen.shifts(first)
    return Summary(len(rows.chats), dict(gen.outcomes), len(rows.surveys), len(rows.tickets), shifts, first, last)
