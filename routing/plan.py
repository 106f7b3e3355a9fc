"""The route plan of a chat: which queues, in which order, and how long each step waits."""

from __future__ import annotations

from typing import Any

from consortium.models import Consortium
from libraries.models import Library, Queue
from routing.router import Step


def default_plan(home: Library | None, consortium: Consortium) -> tuple[Step, ...]:
    """local -> partners -> consortium (docs/routing.md), or a library's own list of steps."""
    shared = list(consortium.queues.filter(kind=Queue.Kind.SHARED, is_active=True).order_by("position", "slug")
                  .values_list("slug", flat=True))
    if home is None or home.route:
        return plan_of(home, consortium, partners=[], consortium_queue=None, shared=shared)
    partners = [p.slug for p in home.partner_libraries() if p.is_active]
    queue = home.consortium_queue if home.consortium_queue_id else None
    return plan_of(home, consortium, partners=partners, shared=shared,
                   consortium_queue=queue.slug if queue is not None and queue.is_active else None)


def plan_of(home: Library | None, consortium: Consortium, *, partners: list[str], consortium_queue: str | None,
            shared: list[str]) -> tuple[Step, ...]:
    """default_plan from what it reads: the home library's active partners (in order), its active
    consortium queue, and the consortium's active shared queues (in order)."""
    if home is None:
        return (Step("consortium", (shared[0],), None),) if shared else ()
    if home.route:
        return plan_from_json(home.route)
    steps = [Step("local", (home.slug,), home.local_timeout or consortium.local_timeout)]
    if partners:
        steps.append(Step("partners", tuple(partners), home.partner_timeout or consortium.partner_timeout))
    queue = consortium_queue or (shared[0] if shared else None)
    if queue is not None:
        steps.append(Step("consortium", (queue,), None))
    return _last_without_wait(steps)


def transfer_plan(queue: str | None, librarian: int | None) -> tuple[Step, ...]:
    return (Step("transfer", (queue,) if queue else (), None, librarian),)


def _last_without_wait(steps: list[Step]) -> tuple[Step, ...]:
    if steps and steps[-1].wait is not None:
        last = steps[-1]
        steps[-1] = Step(last.name, last.queues, None, last.librarian)
    return tuple(steps)


def plan_to_json(plan: tuple[Step, ...]) -> list[dict[str, Any]]:
    return [{"name": s.name, "queues": list(s.queues), "wait": s.wait, "librarian": s.librarian} for s in plan]


def plan_from_json(data: list[dict[str, Any]]) -> tuple[Step, ...]:
    steps = [Step(str(d["name"]), tuple(d.get("queues") or ()), d.get("wait"), d.get("librarian")) for d in data]
    return _last_without_wait(steps)
