"""The consortium's staff room (docs/console.md, "Staff room"): a chat among its staff on duty, in
the console beside their chats. Kept like internal notes: staff only, never anywhere a patron reads.

Its lines are numbered per consortium (`StaffRoomLine.seq`) and travel as `room_message` frames
with that seq, so a console gets each line once and in order across reconnects, as it gets a chat's
messages (routing.sockets.staff: `room_join {after}`, gaps filled from the database).

Why the numbering is safe across processes: `room_post` takes the consortium's row lock before it
reads the last seq, so two lines of one consortium are numbered one after the other; the unique
constraint (consortium, seq) would refuse a second line with a seq anyway. A line sent again with
the same client_id is answered with the one stored first.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max

from consortium.models import Consortium
from libraries.models import StaffProfile
from routing import events, frames
from routing.models import StaffRoomLine

HISTORY = 200  # the lines a console joining the room is sent at most (the newest)


def room_group(consortium_id: int) -> str:
    return f"room.{consortium_id}"


def room_post(profile: StaffProfile, body: str, *, client_id: str | None, now: datetime) -> tuple[StaffRoomLine, bool]:
    """Store a line in the librarian's consortium's room and tell everyone in it: (the line, stored now?)."""
    consortium_id = profile.library.consortium_id
    with transaction.atomic():
        Consortium.objects.select_for_update().filter(pk=consortium_id).values_list("pk", flat=True).first()
        if client_id:
            earlier = StaffRoomLine.objects.filter(consortium_id=consortium_id, librarian=profile,
                                                   client_id=client_id).first()
            if earlier is not None:
                return earlier, False
        last = StaffRoomLine.objects.filter(consortium_id=consortium_id).aggregate(top=Max("seq"))["top"] or 0
        line = StaffRoomLine.objects.create(consortium_id=consortium_id, seq=last + 1, librarian=profile,
                                            name=profile.display_name, library=profile.library.name, body=body,
                                            client_id=client_id or None, at=now)
        events.publish(room_group(consortium_id), frames.room_frame(line), seq=line.seq)
    return line, True


def room_lines_after(consortium_id: int, after: int, *, upto: int | None = None) -> list[StaffRoomLine]:
    """The room's lines with seq > after (<= upto), in order: the newest HISTORY of them."""
    rows = StaffRoomLine.objects.filter(consortium_id=consortium_id, seq__gt=after)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    return list(reversed(rows.order_by("-seq")[:HISTORY]))
