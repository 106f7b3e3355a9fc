"""What routing does when libraries announces a change (libraries/signals.py).

libraries never imports routing: it sends ``queues_changed`` after commit, and routing, listening
here (connected in RoutingConfig.ready), routes the waiting chats of those queues again.
"""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from typing import Any

from django.dispatch import receiver

from consortium.models import Consortium
from libraries.signals import queues_changed
from routing.services.route import waiting_chats_route


@receiver(queues_changed)
def waiting_chats_route_when_queues_change(sender: Any, *, consortium: Consortium, queues: Set[str],
                                           now: datetime, **kwargs: Any) -> None:
    """A queue that opened, or a librarian put on its current shift, is offered its waiting chats at
    once; and each waiting chat's deadline, computed from the old hours, is computed again."""
    waiting_chats_route(consortium, now, set(queues))
