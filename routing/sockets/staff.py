"""The librarian's socket (/ws/staff/): hello, presence, offers, the chats they hold, transfers and
referrals; the mentor live view (watch, whisper, join, take over: routing.services.mentoring) and
the staff room (routing.staff_room)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from consortium.language import profile_language
from libraries.models import StaffProfile
from routing import access, frames, mentions, sharing, staff_room, validation, whispers
from routing.events import chat_group, librarian_group, watch_group
from routing.selectors import librarian_holds, librarian_queues, session_expiry
from routing.services import chats, common, followups, handbacks, mentoring, offers, presence, shares, shifts, transfers
from routing.sockets.base import Frame, ProtocolConsumer, chat_of, header
from routing.sockets.lines import line_post
from routing.sockets.sequence import Accounted
from routing.sockets.sharing import SharingFrames
from routing.threads import ROUTING_THREAD, in_background, in_thread
from routing.validation import Fields, Invalid


def _hello(profile: StaffProfile, channel_name: str, process_id: str) -> tuple[Frame, list[str]]:
    state = presence.staff_connected(profile, channel_name, process_id, timezone.now())
    hello = frames.hello_frame(profile, queues=librarian_queues(profile), presence=state.presence,
                               chats=state.chats, offers=state.offers, shift=state.shift)
    # Added: the mentions not yet opened (routing.mentions), so that a console that was away shows them.
    hello["mentions"] = mentions.mentions_unseen(profile, timezone.now())
    hello["mentor"] = access.is_mentor(profile)
    return hello, [c.pk for c in state.chats]


def _presence_change(profile: StaffProfile, status: str) -> tuple[str, datetime | None, Frame]:
    """(the status, when it changed or None, the shift frame): the chats it concerns are routed after."""
    now = timezone.now()
    result, changed = presence.presence_change(profile, status, now)
    return result, now if changed else None, shifts.shift_state(profile)


def _still_staff(user_id: int) -> bool:
    """Is this user active staff now? Read afresh (the socket's user and profile are from connect)."""
    return access.is_active_staff(user_id)


def _accept(profile: StaffProfile, chat_id: str) -> bool:
    """The accept frame's work, in one trip to a thread. False: the account was switched off.

    A chat already taken is refused before the staff check: losing commits the librarian to nothing."""
    offers.chat_accept_precheck(profile, chat_id)
    if not _still_staff(profile.user_id):
        return False
    offers.chat_accept(profile, chat_id, timezone.now())
    return True


# After hello, how long a staff socket waits for the client's join of each held chat before sending
# that chat's live messages anyway (a client that does not resume with join).
JOIN_WAIT = 10.0
# "I'm staying on" for at most this long at once: a console cannot hold a librarian available all night.
STAY_ON_MAX_MINUTES = 240


class StaffConsumer(SharingFrames, ProtocolConsumer):
    role = "librarian"

    async def connect(self) -> None:
        self.profile: StaffProfile | None = None
        self.watching: set[str] = set()  # chats opened read-only (routing.services.mentoring)
        self.assigned: set[str] = set()  # chats assigned to this librarian while this socket was open
        self.room: Accounted | None = None  # the staff room's seqs, once joined (routing.staff_room)
        self.room_seq = 0
        await super().connect()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.send_json(frames.error_frame("forbidden", "sign in first"))
            await self.close(code=4401)
            return
        if not access.origin_allowed(header(self.scope, b"origin"), None):
            await self.send_json(frames.error_frame("forbidden", "origin not allowed"))
            await self.close(code=4403)
            return
        profile = await in_thread(access.staff_of)(user)
        if profile is None:
            await self.send_json(frames.error_frame("forbidden", "not a staff account"))
            await self.close(code=4403)
            return
        self.profile = profile
        self.reader_id = profile.pk
        # The words of refusals (frames' `detail`) in the librarian's language, as their console's are:
        # chosen when the page was loaded, which a change of language reloads.
        self.language = profile_language(profile)
        session = self.scope.get("session")
        self.session_key = getattr(session, "session_key", None)
        if self.session_key:
            self.session_watch = asyncio.get_running_loop().create_task(self._watch_session(self.session_key))
        await self.channel_layer.group_add(librarian_group(profile.pk), self.channel_name)
        hello, held = await in_thread(_hello)(profile, self.channel_name, self.process_id)
        # A console resumes each held chat with join {after}; until it does (at most JOIN_WAIT s), live
        # messages of that chat are kept back, then sent after the history the join asked for.
        for chat_id, chat in zip(held, hello["chats"], strict=True):
            self.hold_back(chat_id, JOIN_WAIT)
            await self.channel_layer.group_add(chat_group(chat_id), self.channel_name)
            self.seqs[chat_id] = chat["last_seq"]  # live messages continue from here...
            self.accounted[chat_id] = Accounted()  # ...but none has been sent to this socket yet
        await self.send_json(hello)

    def words(self, value: object) -> str:
        with translation.override(getattr(self, "language", None)):
            return super().words(value)

    async def _watch_session(self, key: str) -> None:
        """Close this socket when its session expires (signing out is announced: see routing.signals)."""
        while True:
            expires = await in_thread(session_expiry)(key)
            if expires is None or expires <= timezone.now():
                await self.send_json(frames.error_frame("forbidden", "your session has ended"))
                await self.close(code=4401)
                return
            await asyncio.sleep(min(3600.0, max(0.5, (expires - timezone.now()).total_seconds() + 0.1)))

    async def disconnect(self, code: int) -> None:
        watch = getattr(self, "session_watch", None)
        if watch is not None:
            watch.cancel()
        if self.profile is None:
            return
        await self.shares_release(media_only=False)
        await self.channel_layer.group_discard(librarian_group(self.profile.pk), self.channel_name)
        for chat_id in list(self.seqs):
            await self.channel_layer.group_discard(chat_group(chat_id), self.channel_name)
        for chat_id in self.watching:
            await self.channel_layer.group_discard(watch_group(chat_id), self.channel_name)
        if self.room is not None:
            await self.channel_layer.group_discard(staff_room.room_group(self.profile.library.consortium_id),
                                                   self.channel_name)
        await in_thread(presence.staff_disconnected)(self.channel_name, timezone.now())

    async def vr_close(self, event: dict[str, Any]) -> None:
        """Signed out: close the sockets of that session (other devices keep theirs). Switched off
        (routing.signals): close them all."""
        if event.get("session") in (None, self.session_key):
            await self.send_json(frames.error_frame("forbidden", str(event.get("detail") or "signed out")))
            await self.close(code=int(event.get("code", 4401)))

    def _me(self) -> StaffProfile:
        assert self.profile is not None
        return self.profile

    async def frame_presence(self, frame: Frame) -> None:
        f = Fields(frame)
        status = f.choice("status", ("available", "away"))
        f.check()
        result, changed_at, shift = await in_thread(_presence_change)(self._me(), status)
        await self.send_json(frames.presence_frame(result))
        # Sent here rather than through the channel layer, so that it always follows the answer.
        await self.send_json(shift)
        if changed_at is not None:
            # Answered: now the chats it concerns, on the process's routing thread, without holding up
            # this socket's next frame (an accept of an offer it brings, say).
            in_background(in_thread(presence.presence_reroute, ROUTING_THREAD)(self._me().pk, changed_at))

    async def frame_stay_on(self, frame: Frame) -> None:
        """Answered with a shift (or shift_ending) frame to every console of this librarian."""
        f = Fields(frame)
        minutes = f.integer("minutes", minimum=1, maximum=STAY_ON_MAX_MINUTES)
        f.check()
        await in_thread(shifts.shift_stay_on)(self._me(), timezone.now(),
                                                seconds=minutes * 60 if minutes else None)

    async def still_staff(self) -> bool:
        """Ask access.staff_of again (one query), before what commits a librarian to a chat: the close
        that routing.signals sends when a librarian is switched off travels the channel layer, which
        may drop it. False: told and closed."""
        if not await in_thread(_still_staff)(self._me().user_id):
            await self.switched_off()
            return False
        return True

    async def switched_off(self) -> None:
        await self.send_json(frames.error_frame("forbidden", "your staff account was switched off"))
        await self.close(code=4403)

    async def frame_accept(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        try:
            if not await in_thread(_accept)(self._me(), chat_id):
                await self.switched_off()
        except common.ServiceError as refused:
            await self.send_json(frames.accept_failed_frame(chat_id, refused.reason, refused.detail))

    async def frame_decline(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        await in_thread(offers.chat_decline)(self._me(), chat_id, timezone.now())

    async def frame_message(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        body, cid = f.text("body", required=True, max_len=validation.MAX_BODY, strip=False), f.client_id()
        f.check()
        internal = frame.get("internal") is True
        message, created = await line_post(chat_id, sender="librarian", body=body, client_id=cid,
                                           librarian=self._me(), internal=internal)
        if not created:
            # The client_id may be another's line of this chat (a whisper kept from this librarian).
            await self.answer_resent(frames.message_frame(message),
                                     hidden=whispers.hidden_from(self._me().pk, whispers.audience(message)))

    async def frame_typing(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        if chat_id not in self.seqs or (chat_id in self.watching and chat_id not in self.assigned):
            raise Invalid("you do not hold that chat")  # a watcher's typing is nothing the patron should see
        await self.channel_layer.group_send(chat_group(chat_id), {
            "type": "vr.event", "frame": frames.typing_frame(chat_id, "librarian")})

    async def frame_transfer(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        rule = '{"queue": slug} or {"librarian": username}'
        target = f.object("to", rule, queue=str, librarian=str)
        if target and not (target.get("queue") or target.get("librarian")):
            f.problem("to", f"must be {rule}")
        note = f.text("note", max_len=validation.MAX_NOTE, strip=False)
        f.check()
        if not await self.still_staff():
            return
        try:
            await in_thread(transfers.chat_transfer)(
                self._me(), chat_id, timezone.now(), queue=target.get("queue"),
                to_librarian=target.get("librarian") if not isinstance(target.get("queue"), str) else None,
                note=note)
        except common.ServiceError as refused:
            await self.send_json(frames.transfer_failed_frame(chat_id, refused.reason, refused.detail))

    async def frame_hand_back(self, frame: Frame) -> None:
        """The way home: the chat goes to its home library's queue with the note (a transfer)."""
        f = Fields(frame)
        chat_id = f.chat_id()
        note = f.text("note", max_len=validation.MAX_NOTE, strip=False)
        f.check()
        if not await self.still_staff():
            return
        try:
            await in_thread(handbacks.chat_hand_back)(self._me(), chat_id, timezone.now(), note=note)
        except common.ServiceError as refused:
            await self.send_json(frames.transfer_failed_frame(chat_id, refused.reason, refused.detail))

    async def frame_refer(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        target = f.object("to", '{"library": slug}', required=False, library=str)
        note = f.text("note", max_len=validation.MAX_NOTE, strip=False)
        deadline = f.text("deadline", max_len=10)  # the day the patron needs the answer by (YYYY-MM-DD)
        f.check()
        ticket = await in_thread(followups.chat_refer)(
            self._me(), chat_id, timezone.now(), library_slug=target.get("library") or None, note=note,
            deadline=deadline)
        await self.send_json(frames.referred_frame(chat_id, ticket.pk))

    async def frame_end(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        await in_thread(chats.chat_end)(chat_id, timezone.now(), by="librarian",
                                                        librarian=self._me())

    async def frame_join(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id, after = f.chat_id(), f.integer("after")
        f.check()
        # Nothing live overtakes the history asked for: from here the hold lasts until that history is
        # sent, however long the database takes (under load the check below can wait longer than
        # JOIN_WAIT for a thread, and a release in between sent those live messages before the history).
        self.hold_back(chat_id, float("inf"))
        try:
            holds = await in_thread(librarian_holds)(self._me().pk, chat_id)
        except Exception:
            await self.release_held_back(chat_id)
            raise
        if not holds:
            await self.release_held_back(chat_id)
            raise common.ServiceError("not_found", gettext_lazy("you do not hold that chat"))
        await self.channel_layer.group_add(chat_group(chat_id), self.channel_name)
        await self.send_history(chat_id, after)

    # -- the mentor live view (routing.services.mentoring) -----------------------------------------

    async def frame_watch(self, frame: Frame) -> None:
        """Open a chat read-only: `watching`, then its messages after `after` (internal notes and
        whispers too), then live ones, each once, as a join sends them (routing.sockets.base)."""
        f = Fields(frame)
        chat_id, after = f.chat_id(), f.integer("after", minimum=0) or 0
        f.check()
        self.hold_back(chat_id, float("inf"))
        try:
            watching = await in_thread(_watch)(self._me(), chat_id)
        except BaseException:
            await self.release_held_back(chat_id)
            raise
        self.watching.add(chat_id)
        await self.channel_layer.group_add(watch_group(chat_id), self.channel_name)
        await self.channel_layer.group_add(chat_group(chat_id), self.channel_name)
        await self.send_json(watching)
        await self.send_history(chat_id, after)

    async def frame_unwatch(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        if chat_id in self.watching:
            self.watching.discard(chat_id)
            await self.channel_layer.group_discard(watch_group(chat_id), self.channel_name)
            if not await in_thread(librarian_holds)(self._me().pk, chat_id):
                await self.channel_layer.group_discard(chat_group(chat_id), self.channel_name)
                self.seqs.pop(chat_id, None)
                self.accounted.pop(chat_id, None)

    async def frame_whisper(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        body, cid = f.text("body", required=True, max_len=validation.MAX_BODY, strip=False), f.client_id()
        f.check()
        message, created = await in_thread(mentoring.whisper_post)(self._me(), chat_id, body, client_id=cid,
                                                                   now=timezone.now())
        # No `@name` is read in a whisper: a mention would show its words to a third colleague.
        if not created:
            await self.answer_resent(frames.message_frame(message))

    async def frame_mentor_join(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        if not await self.still_staff():
            return
        await in_thread(mentoring.chat_second_join)(self._me(), chat_id, timezone.now())

    async def frame_take_over(self, frame: Frame) -> None:
        chat_id = chat_of(frame)
        if not await self.still_staff():
            return
        try:
            await in_thread(mentoring.takeover_ask)(self._me(), chat_id, timezone.now())
        except common.ServiceError as refused:
            await self.send_json(frames.takeover_failed_frame(chat_id, refused.reason, refused.detail))

    async def frame_takeover_answer(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        consent = frame.get("consent")
        if not isinstance(consent, bool):
            f.problem("consent", "must be true or false")
        f.check()
        await in_thread(mentoring.takeover_answer)(self._me(), chat_id, consent=bool(consent), now=timezone.now())

    # -- the staff room (routing.staff_room) -------------------------------------------------------

    async def frame_room_join(self, frame: Frame) -> None:
        """The room's lines after `after`, then live ones: each once, in order. The group is joined
        before the read, so a line is either in the read or arrives after it (dropped if both)."""
        f = Fields(frame)
        after = f.integer("after", minimum=0) or 0
        f.check()
        consortium_id = self._me().library.consortium_id
        await self.channel_layer.group_add(staff_room.room_group(consortium_id), self.channel_name)
        async with self.sending:
            if self.room is None:
                self.room = Accounted()
            lines = await in_thread(staff_room.room_lines_after)(consortium_id, after)
            for line in lines:
                await self._room_emit(frames.room_frame(line))
            top = max([after, *(line.seq for line in lines)])
            self.room.add_upto(top)
            self.room_seq = max(self.room_seq, top)

    async def frame_room_message(self, frame: Frame) -> None:
        f = Fields(frame)
        body, cid = f.text("body", required=True, max_len=validation.MAX_BODY, strip=False), f.client_id()
        f.check()
        line, created = await in_thread(staff_room.room_post)(self._me(), body, client_id=cid, now=timezone.now())
        if not created:
            await self.send_json({**frames.room_frame(line), "resent": True})

    async def _room_emit(self, frame: Frame) -> None:
        assert self.room is not None
        seq = int(frame["seq"])
        if not self.room.has(seq):
            self.room.add(seq)
            await self.send_json(frame)

    async def vr_event(self, event: dict[str, Any]) -> None:
        if event["frame"].get("type") != "room_message":
            if event.get("join_chat"):
                self.assigned.add(event["join_chat"])  # held now (a take-over), not only watched
            await super().vr_event(event)
            return
        frame, seq = event["frame"], int(event["frame"]["seq"])
        async with self.sending:
            if self.room is None:
                return
            if seq > self.room_seq + 1:  # the layer dropped a line: fill the gap from the database
                for line in await in_thread(staff_room.room_lines_after)(
                        self._me().library.consortium_id, self.room_seq, upto=seq - 1):
                    await self._room_emit(frames.room_frame(line))
            self.room_seq = max(self.room_seq, seq)
            await self._room_emit(frame)

    # -- sharing (routing.sockets.sharing; docs/protocol.md, issue 19) ---------------------------

    async def frame_share_request(self, frame: Frame) -> None:
        """Ask the patron to share (`see`, `page`) or to watch (`show`). Binds this socket to the share."""
        f = Fields(frame)
        chat_id = f.chat_id()
        kind = f.choice("kind", sharing.KINDS)
        f.check()
        share, ice = await in_thread(shares.share_request)(self._me(), chat_id, kind, timezone.now())
        self.share_bind(share.pk, chat_id, kind)
        await self.send_json(frames.share_requested_frame(share, ice))

    async def frame_share_end(self, frame: Frame) -> None:
        f = Fields(frame)
        chat_id = f.chat_id()
        share_id = sharing.share_id_of(f)
        reason = f.choice("reason", ("stopped", "failed"), required=False) or "stopped"
        f.check()
        await in_thread(shares.share_end)(chat_id, share_id, timezone.now(), by="librarian", reason=reason,
                                          librarian=self._me())
        self.shares.pop(share_id, None)

    async def frame_page_push(self, frame: Frame) -> None:
        """Send the patron a page as a card (routing.services.shares.page_push)."""
        f = Fields(frame)
        chat_id = f.chat_id()
        url = sharing.web_address(f, "url")
        title = f.text("title", max_len=sharing.MAX_PAGE_TITLE)
        f.check()
        await in_thread(shares.page_push)(self._me(), chat_id, url, title or url, timezone.now())


def _watch(profile: StaffProfile, chat_id: str) -> Frame:
    now = timezone.now()
    watching = mentoring.chat_watch(profile, chat_id, now)
    mentions.mentions_seen(profile, chat_id, now)
    return watching

