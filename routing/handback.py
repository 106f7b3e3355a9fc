"""The way home: may a chat held away from its patron's home library be handed back now?

Plain Python with no I/O, like routing.router. A partner's or the consortium's librarian holds a
chat whose patron has a home library; when a librarian of that library becomes available (present,
below capacity, the library's local queue open), the holder is asked "hand back?". Never
automatic: the holder decides, and the hand-back is a transfer (routing.services.transfers), refused
whole if the home library can no longer take it.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.router import Situation


@dataclass(frozen=True)
class HeldChat:
    id: str
    holder: int
    holder_library: str
    home_library: str | None


def away_from_home(chat: HeldChat) -> bool:
    return chat.home_library is not None and chat.home_library != chat.holder_library


def home_can_take(chat: HeldChat, situation: Situation) -> bool:
    """The home library's local queue is open and one of its librarians, not the holder, is present
    with room for one more chat: what a transfer to that queue needs, and a little more (busy is not
    available here: a hand-back offered to a full desk would only wait)."""
    home = chat.home_library
    if home is None or not away_from_home(chat) or home not in situation.open_queues:
        return False
    return any(lib.id != chat.holder and lib.active < lib.capacity for lib in situation.present.get(home, ()))
