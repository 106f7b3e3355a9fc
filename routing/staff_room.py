"""The consortium's staff room (docs/console.md, "Staff room"): a chat among its staff on duty, in
the console beside their chats. Kept like internal notes: staff only, never anywhere a patron reads.

Its members, who write in it, are the staff on duty (`on_duty`): with the console open (or inside
the reconnect grace) and available, or busy answering a chat (away so as to get no new offer while
they finish one). Someone away reads it, read-only, with a note saying why they cannot write: a
librarian back from a break catches up on what was said, and a line asking "who can cover?" is
answered by someone who is there. Checked again at every line, in the database (the truth for every
process); the console's note is only its reading of the same presence and chats.

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
from django.db.models import Max, Q
from django.utils.translation import gettext_lazy

from consortium.models import Consortium
from libraries.models import StaffProfile
from routing import events, frames
from routing.models import Chat, ChatState, LibrarianPresence, StaffRoomLine
from routing.services.common import ServiceError

HISTORY = 200  # the lines a console joining the room is sent at most (the newest)


def room_group(consortium_id: int) -> str:
    return f"room.{consortium_id}"


def on_duty(profile: StaffProfile) -> bool:
    """A member of the staff room: online, and available or answering a chat (busy)."""
    presence = LibrarianPresence.objects.filter(pk=profile.pk, online=True).values_list("status", flat=True).first()
    if presence is None:
        return False
    if presence == LibrarianPresence.Status.AVAILABLE:
        return True
    return Chat.objects.filter(Q(librarian=profile) | Q(second_librarian=profile), state=ChatState.ACTIVE).exists()


def room_post(profile: StaffProfile, body: str, *, client_id: str | None, now: datetime) -> tuple[StaffRoomLine, bool]:
    """Store a line in the librarian's consortium's room and tell everyone in it: (the line, stored now?).
    Refused (ServiceError `forbidden`) to someone off duty; a line stored before is answered still."""
    consortium_id = profile.library.consortium_id
    with transaction.atomic():
        Consortium.objects.select_for_update().filter(pk=consortium_id).values_list("pk", flat=True).first()
        if client_id:
            earlier = StaffRoomLine.objects.filter(consortium_id=consortium_id, librarian=profile,
                                                   client_id=client_id).first()
            if earlier is not None:
                return earlier, False
        if not on_duty(profile):
            raise ServiceError("forbidden", gettext_lazy(
                "you are away: the staff room is for staff on duty. Set yourself available (or answer a chat) to "
                "write in it; you can still read it"))
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
