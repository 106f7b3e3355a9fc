"""What libraries announce to the apps above it.

libraries sits below routing: it never imports routing. When something here changes what routing
decided from (a queue's hours, closures, special days, its rota), libraries sends a signal after the
transaction commits, and routing, which listens (routing/receivers.py), acts on it.

``queues_changed``
    Sent after commit when the hours or the rota of some queues changed: a queue that opened, or a
    librarian put on the current shift, must be offered waiting chats at once (docs/routing.md,
    "Timing"), and each waiting chat's stored deadline was computed from the old hours.

    Sent with ``sender=Consortium`` and the keyword arguments:

    - ``consortium``: the Consortium whose queues changed;
    - ``queues``: a frozenset of the changed queues' slugs;
    - ``now``: the instant of the change (the caller's clock, as every service takes it).

    Not sent when the transaction rolls back, nor when the consortium was deleted meanwhile.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.dispatch import Signal

from consortium.models import Consortium

queues_changed = Signal()


def queues_changed_send(consortium_id: int, slugs: set[str], now: datetime) -> None:
    """Send ``queues_changed`` for these queues of a consortium once the current transaction commits."""
    queues = frozenset(slugs)

    def send() -> None:
        consortium = Consortium.objects.filter(pk=consortium_id).first()
        if consortium is not None:
            queues_changed.send(sender=Consortium, consortium=consortium, queues=queues, now=now)

    transaction.on_commit(send)
