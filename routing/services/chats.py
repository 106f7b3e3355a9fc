"""A chat from start to end: resolving the home library, starting, messages, ending, classifying."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from django.db import connections, transaction
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy

from consortium.models import Consortium
from consortium.queries import atomic_pipelined
from consortium.tokens import token_hash, token_new
from libraries.models import Library, StaffProfile
from routing import blocks, events, frames, mentions, message_store, returning
from routing.access import took_part_q
from routing.models import LIVE_STATES, Channel, Chat, ChatState, Message, Survey, TraceEvent
from routing.plan import plan_to_json
from routing.selectors import librarian_queues, with_chat_channel
from routing.services.common import Refused, ServiceError, chat_end_locked, chat_lock, log_decision, trace
from routing.services.route import TraceLine, chat_route_new, waiting_chats_route
from routing.structure import Stamp, Structure, stamp_ask, structure_of
from routing.structure import kept as kept_structure
from routing.validation import Fields, Invalid

SMS_MAX_BODY = 1600  # one text (docs/sms.md): a librarian's longer message in an SMS chat is refused


def home_library_resolve(consortium: Consortium, library_slug: str | None, zip_code: str | None,
                         picture: Structure | None = None) -> tuple[Library | None, str]:
    """The library named by the widget or ask page; else the one whose service area holds the ZIP."""
    picture = picture or structure_of(consortium)
    if library_slug:
        library = picture.libraries.get(library_slug)
        if library is None:
            raise ServiceError("not_found", format_lazy(gettext_lazy("no library {slug} in this consortium"),
                                                        slug=repr(library_slug)))
        return library, "library"
    if zip_code:
        code = zip_code.strip()[:5]
        for library in picture.libraries.values():
            if code in (library.zip_codes or []):
                return library, "zip"
    return None, "none"


def chat_start(*, consortium: Consortium, question: str, library_slug: str | None = None,
               zip_code: str | None = None, name: str = "", email: str = "", language: str = "",
               ip: str | None = None, now: datetime, channel: str = Channel.WEB, device: str = "",
               phone: str = "", remember: bool = False) -> tuple[Chat, str]:
    """Start a chat, unless its patron is blocked (routing.blocks): then ServiceError "blocked", and
    nothing is kept (the question form stays open to them). `device` is the browser's id, `phone` a
    text's number; the address counts only while a block keyed by it lasts. `remember`: the patron's
    consent to link their chats on this device (routing.returning), which gives the librarian who
    last helped them a head start."""
    keys = blocks.Keys(device=blocks.device_hash(device), phone=blocks.phone_hash(phone),
                       address=blocks.address_hash(ip))
    if blocks.block_find(consortium.pk, keys, now) is not None:
        raise ServiceError("blocked", gettext_lazy("chat is not available to this patron now; the question form is"))
    start = partial(_start, consortium=consortium, question=question, library_slug=library_slug, zip_code=zip_code,
                    name=name, email=email, language=language, ip=ip, now=now, channel=channel, keys=keys,
                    remember=remember)
    # The structure as this process keeps it, checked by a stamp asked with the first read of the
    # transaction instead of by a round trip before it. Nothing decided from a stale picture is
    # written: it is rolled back and the start made again from the picture read anew.
    picture = kept_structure(consortium)
    if picture is not None:
        try:
            return start(picture=picture)
        except _StalePicture:
            pass
    return start(picture=None)


class _StalePicture(Exception):
    """The kept structure changed under a chat being started: start it again from the new one."""


def _start(*, consortium: Consortium, question: str, library_slug: str | None, zip_code: str | None, name: str,
           email: str, language: str, ip: str | None, now: datetime, channel: str, keys: blocks.Keys,
           remember: bool, picture: Structure | None) -> tuple[Chat, str]:
    """chat_start on `picture`, the kept structure unchecked (raises _StalePicture if it is not the
    structure as of this transaction), or None: the structure read now."""
    # Pipelined, BEGIN and COMMIT included: the stamp and who is there to offer the chat to in one
    # round trip; then the chat's row, its trace, its offers, its first line and COMMIT in another.
    with atomic_pipelined():
        asked = stamp_ask()
        # (A picture read now has the stamp asked: the checks below pass without a query.)
        picture = picture or structure_of(consortium, asked)
        try:
            home, found_by = home_library_resolve(consortium, library_slug, zip_code, picture)
        except ServiceError:
            _check(asked, picture)  # a library added since: not "no such library"
            raise
        token = token_new()
        plan = picture.plan_for(home, consortium)
        remembered = remember and bool(keys.device)
        if remembered:
            plan = returning.head_start_plan(plan, last_helper=returning.last_helper(consortium, keys.device, now),
                                             seconds=consortium.returning_head_start)
        chat = Chat(
            consortium=consortium, home_library=home, home_found_by=found_by, question=question,
            language=language, patron_name=name, patron_email=email, patron_ip=ip, patron_device=keys.device,
            token_hash=token_hash(token), created_at=now, arrived_at=now, last_activity_at=now,
            plan=plan_to_json(plan), last_seq=1, state=ChatState.QUEUED if plan else ChatState.UNSTAFFED,
            channel=channel, remembered=remembered,
            # A texting patron has no socket to join or lose: present from the first text (docs/sms.md).
            patron_joined=channel == Channel.SMS,
        )
        created: dict[str, object] = {"home_library": home.slug if home else None, "found_by": found_by,
                                      "language": language or None}
        if remembered:
            created["remembered"] = True
        log_decision(chat, "created", created)  # logged once committed, before what the router decides
        if plan:
            # Decided before it is written: the chat's row goes in once, with its first step, in the
            # same transaction as its trace and offers (route.chat_route_new).
            chat_route_new(chat, now, first_trace=TraceLine(chat.pk, now, "created", created),
                           structure=picture, check=partial(_check, asked, picture))
        else:
            _check(asked, picture)
            chat.save(force_insert=True)
            TraceEvent.objects.bulk_create([
                TraceEvent(chat=chat, at=now, kind="created", data=created),
                TraceEvent(chat=chat, at=now, kind="unstaffed",
                           data={"reason": "the consortium has no queue for this chat"})])
            log_decision(chat, "unstaffed", {"reason": "the consortium has no queue for this chat"})
        _first_line_write(chat, name=name, body=question, at=now)
    return chat, token


def _check(asked: Stamp, picture: Structure) -> None:
    """Before anything decided from `picture` is written: is it the structure as of this transaction?"""
    if asked() != picture.stamp:
        raise _StalePicture()


def _first_line_write(chat: Chat, *, name: str, body: str, at: datetime) -> None:
    """The patron's question, the chat's line 1. Written without reading its id back (as
    Message.objects.create does), so that in chat_start's pipeline it waits for nothing."""
    connection = connections[Message.objects.db]
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (chat_id, seq, sender, name, body, at, internal) "
                       "VALUES (%s, 1, %s, %s, %s, %s, %s)",
                       [chat.pk, Message.Sender.PATRON.value, name, body,
                        Message._meta.get_field("at").get_db_prep_save(at, connection), False])


class RateLimited(ServiceError):
    """Past the chat's message rate (consortium.ratelimit.CHAT_MESSAGE): not stored, try again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate_limited", format_lazy(
            gettext_lazy("too many messages in this chat: not sent, try again in {seconds} s"), seconds=retry_after))
        self.retry_after = retry_after


def message_post(chat_id: str, *, sender: str, body: str, client_id: str | None, now: datetime,
                 librarian: StaffProfile | None = None, internal: bool = False,
                 file_id: str | None = None, counted: bool = False) -> tuple[Message, bool]:
    """Store a message (its seq allocated under the chat's lock), then tell everyone. Idempotent by client_id:
    (the message, True) when stored now, (the message stored earlier, False) for a client_id seen before.

    `counted`: a patron's line from the socket or HTTP, refused with RateLimited past the chat's rate."""
    name = librarian.display_name if librarian else None
    if needs_sms_check(sender, body, internal) and (
            Chat.objects.filter(pk=chat_id, channel=Channel.SMS).exists()):
        raise ServiceError("too_long", format_lazy(
            gettext_lazy("a text is at most {most} characters: split the message"), most=SMS_MAX_BODY))
    stored = message_store.store(chat_id, sender=sender, body=body, client_id=client_id, at=now,
                                 librarian_id=librarian.pk if librarian else None, name=name, internal=internal,
                                 file_id=file_id, counted=counted)
    if stored is not None and stored.duplicate_of is not None:
        return message_stored_earlier(stored.duplicate_of, sender, librarian), False
    message = message_of(stored, chat_id, sender=sender, body=body, client_id=client_id, now=now,
                         librarian=librarian, internal=internal, file_id=file_id)
    if texted(message):
        message_texted(message)
    if librarian is not None and mentions_possible(message):
        mentions.mentions_record(message, librarian, now)
    # Announced after the commit: on its own the statement has committed already; inside a caller's
    # transaction, on_commit waits for that one.
    events.to_chat(chat_id, frames.message_frame(message), seq=message.seq, internal=internal)
    return message, True


# message_post in parts, for the sockets' path from the event loop (routing.sockets.base.post_message),
# which stores with message_store.store_async and does the rest here.

def needs_sms_check(sender: str, body: str, internal: bool) -> bool:
    """Whether the chat's channel must be read first: a librarian's line too long for a text."""
    return len(body) > SMS_MAX_BODY and sender == Message.Sender.LIBRARIAN and not internal


def message_stored_earlier(message_id: int, sender: str, librarian: StaffProfile | None) -> Message:
    earlier = with_chat_channel(Message.objects.all()).get(pk=message_id)
    # Echo a librarian only their own line: a client_id chosen to match another librarian's
    # message must not read it back (the chat's patron, who has its token, reads it all anyway).
    if sender == Message.Sender.LIBRARIAN and (librarian is None or earlier.librarian_id != librarian.pk):
        raise ServiceError("forbidden", gettext_lazy("only the chat's librarian may send"))
    return earlier


def message_of(stored: message_store.Stored | None, chat_id: str, *, sender: str, body: str, client_id: str | None,
               now: datetime, librarian: StaffProfile | None, internal: bool, file_id: str | None) -> Message:
    """The message just stored, or the ServiceError that says why it was not (not a duplicate)."""
    if stored is None:
        raise ServiceError("not_found", gettext_lazy("no such chat"))
    if stored.message_id is None or stored.seq is None:
        if sender == Message.Sender.LIBRARIAN and (librarian is None or stored.librarian_id != librarian.pk):
            raise ServiceError("forbidden", gettext_lazy("only the chat's librarian may send"))
        if stored.retry_after:
            raise RateLimited(stored.retry_after)
        raise ServiceError("ended", gettext_lazy("this chat is over"))
    name = librarian.display_name if librarian else None
    message = Message(pk=stored.message_id, chat_id=chat_id, seq=stored.seq, sender=sender, librarian=librarian,
                      name=stored.patron_name if name is None else name, body=body, client_id=client_id or None,
                      at=now, internal=internal, file_id=file_id)
    message.chat_channel = stored.channel  # for its frames, here and wherever the caller echoes it
    return message


def mentions_possible(message: Message) -> bool:
    """An internal note that may name colleagues (routing.mentions): read further only then."""
    return message.internal and message.sender == Message.Sender.LIBRARIAN and "@" in message.body


def texted(message: Message) -> bool:
    """A librarian's line in an SMS chat is also texted to the patron (docs/sms.md)."""
    return (message.chat_channel == Channel.SMS and message.sender == Message.Sender.LIBRARIAN
            and not message.internal)


def message_texted(message: Message) -> None:
    from texting.outbound import librarian_message_sent  # texting builds on routing: imported here

    librarian_message_sent(message)


def survey_answer(chat: Chat, *, rating: int, comment: str, now: datetime) -> bool:
    """Store the patron's answer to the survey after a chat: False when it was answered already."""
    with transaction.atomic():
        _answer, created = Survey.objects.get_or_create(
            chat=chat, defaults={"rating": rating, "comment": comment, "created_at": now})
    return created


def chat_end(chat_id: str, now: datetime, *, by: str, librarian: StaffProfile | None = None) -> Chat:
    with transaction.atomic():
        chat = chat_lock(chat_id)
        if chat is None:
            raise ServiceError("not_found", gettext_lazy("no such chat"))
        if librarian is not None and chat.librarian_id != librarian.pk:
            raise ServiceError("forbidden", gettext_lazy("you do not hold this chat"))
        if chat.state in LIVE_STATES:
            chat_end_locked(chat, now, by=by, reason=by)
            freed = chat.librarian_id
        else:
            freed = None
    if freed is not None or librarian is not None:
        holder = librarian or (StaffProfile.objects.filter(pk=freed).first() if freed else None)
        if holder is not None:
            waiting_chats_route(holder.consortium, now, set(librarian_queues(holder)))
            if freed is not None:
                from routing.services.handbacks import handbacks_announce  # it builds on transfers: imported here

                # A librarian freed: their library may now take back its patrons' chats held elsewhere.
                handbacks_announce(holder.library.consortium, holder.library, now)
    return chat


OUTCOMES = ("answered", "referred", "patron_left")


READ_SCALE = range(1, 7)


MAX_SUBJECTS = 10


MAX_SUBJECT_LEN = 50


def clean_subjects(raw: Any) -> list[str]:
    """Tags from a list or a comma-separated string: trimmed, lower-cased, unique, in order."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise Refused("invalid", gettext_lazy("subjects must be a list of tags"),
                      {"subjects": [gettext_lazy("must be a list of tags")]})
    tags: list[str] = []
    for item in items:
        tag = " ".join(item.split()).lower()
        if not tag or tag in tags:
            continue
        if len(tag) > MAX_SUBJECT_LEN:
            raise Refused("invalid", gettext_lazy("a tag is too long"),
                          {"subjects": [format_lazy(gettext_lazy("must be tags of at most {most} characters"),
                                                     most=MAX_SUBJECT_LEN)]})
        tags.append(tag)
    if len(tags) > MAX_SUBJECTS:
        raise Refused("invalid", gettext_lazy("too many tags"),
                      {"subjects": [format_lazy(gettext_lazy("must be at most {most} tags"), most=MAX_SUBJECTS)]})
    return tags


def chat_classify(profile: StaffProfile, chat_id: str, now: datetime, *, read_scale: Any, subjects: Any,
                  outcome: Any) -> Chat:
    """Store subject tags, the READ scale (1-6) and the outcome on a chat the librarian answered."""
    f = Fields({"read_scale": read_scale, "outcome": outcome})
    scale = f.optional_integer("read_scale", minimum=READ_SCALE.start, maximum=READ_SCALE.stop - 1)
    outcome = f.choice("outcome", OUTCOMES, required=False)
    try:
        tags = clean_subjects(subjects)
    except Refused as e:
        for message in e.fields.get("subjects", []):
            f.problem("subjects", message)
        tags = []
    try:
        f.check()
    except Invalid as e:
        raise Refused("invalid", gettext_lazy("some fields are not valid"), e.fields) from e
    with transaction.atomic():
        chat = (Chat.objects.select_for_update(of=("self",))
                .filter(pk=chat_id, consortium_id=profile.library.consortium_id).filter(took_part_q(profile))
                .first())
        if chat is None:
            raise Refused("not_found", gettext_lazy("no such chat"))
        chat.read_scale = scale
        chat.subjects = tags
        chat.outcome = outcome or ""
        chat.save(update_fields=["read_scale", "subjects", "outcome"])
        trace(chat, "classified", now, librarian=profile.pk, read_scale=scale, subjects=tags, outcome=chat.outcome)
    return chat
