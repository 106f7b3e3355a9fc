"""routing.frames: the frames that were built inline before, field for field (docs/protocol.md)."""

from __future__ import annotations

import datetime as dt

from routing import frames


def test_referred_names_the_follow_up_under_both_words() -> None:
    assert frames.referred_frame("c1", "t1") == {"type": "referred", "chat": "c1", "ticket": "t1", "follow_up": "t1"}


def test_socket_frames_keep_their_fields() -> None:
    assert frames.error_frame("forbidden", "sign in first") == {
        "type": "error", "code": "forbidden", "detail": "sign in first", "client_id": None}
    assert frames.error_frame("invalid", "body must be a string", client_id="c")["client_id"] == "c"
    assert frames.pong_frame() == {"type": "pong"}
    assert frames.joined_frame("c1") == {"type": "joined", "chat": "c1"}
    assert frames.typing_frame("c1", "patron") == {"type": "typing", "chat": "c1", "sender": "patron"}
    assert frames.unassigned_frame("c1", "ended") == {"type": "unassigned", "chat": "c1", "reason": "ended"}
    assert frames.patron_presence_frame("c1", present=False) == {"type": "patron_presence", "chat": "c1",
                                                                 "present": False}
    assert frames.accept_failed_frame("c1", "taken", "another librarian accepted this chat") == {
        "type": "accept_failed", "chat": "c1", "reason": "taken", "detail": "another librarian accepted this chat"}
    assert frames.transfer_failed_frame("c1", "closed", "x")["type"] == "transfer_failed"


def test_presence_says_why_and_until_when_only_when_the_server_sets_it() -> None:
    assert frames.presence_frame("available") == {"type": "presence", "status": "available"}
    assert frames.presence_frame("away", reason="offer_expired") == {"type": "presence", "status": "away",
                                                                     "reason": "offer_expired"}
    end = dt.datetime(2026, 3, 9, 22, tzinfo=dt.UTC)
    assert frames.presence_frame("away", reason="shift_end", ends_at=end) == {
        "type": "presence", "status": "away", "reason": "shift_end", "ends_at": end.isoformat()}
