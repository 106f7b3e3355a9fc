"""Chats and everything that happens to them: messages, offers, the trace, tickets, presence.

The database is the truth. Every deadline the router must honour is stored on the chat
(`Chat.deadline`) or on the librarian's presence (`LibrarianPresence.grace_until`), so any process
can pick routing up where a dead one left it.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import pgettext_lazy

from consortium.models import Consortium
from libraries.models import Library, StaffProfile


def new_id() -> str:
    """16 URL-safe characters, never starting with "-" or "_": an operator passes a chat id to a command
    (`manage.py forget_chat ID`), where a leading "-" reads as an option (1 id in 32 did)."""
    while True:
        candidate = secrets.token_urlsafe(12)
        if candidate[0].isalnum():
            return candidate


class ChatState(models.TextChoices):
    QUEUED = "queued", pgettext_lazy("a chat's state", "Waiting")
    ACTIVE = "active", pgettext_lazy("a chat's state", "Being answered")
    ENDED = "ended", pgettext_lazy("a chat's state", "Ended")
    UNSTAFFED = "unstaffed", pgettext_lazy("a chat's state", "Nobody to answer")
    ABANDONED = "abandoned", pgettext_lazy("a chat's state", "Patron left before an answer")


# A chat still going on: waiting for a librarian or being answered.
LIVE_STATES = (ChatState.QUEUED, ChatState.ACTIVE)


class Channel(models.TextChoices):
    """How the patron reaches the chat: the web (ask page, widget) or texting (docs/sms.md)."""

    WEB = "web", pgettext_lazy("how a patron reaches the chat", "Web")
    SMS = "sms", pgettext_lazy("how a patron reaches the chat", "Text message (SMS)")


class Chat(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="chats")
    channel = models.CharField(max_length=5, choices=Channel.choices, default=Channel.WEB)
    home_library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="home_chats")
    home_found_by = models.CharField(max_length=10, default="none")  # library | zip | none
    question = models.TextField()
    language = models.CharField(max_length=16, blank=True)
    patron_name = models.CharField(max_length=100, blank=True)
    patron_email = models.CharField(max_length=254, blank=True)
    patron_ip = models.GenericIPAddressField(null=True, blank=True)
    # The SHA-256 of the random id the patron's browser keeps (docs/protocol.md, "device"): what a block
    # is keyed by first (routing.blocks). Blank for texts and for clients that send none.
    patron_device = models.CharField(max_length=64, blank=True)
    # The patron ticked "remember me on this device" (off by default): only such chats of one device
    # are linked (routing.returning), shown to librarians as earlier chats and given a head start.
    remembered = models.BooleanField(default=False, db_default=False)
    token_hash = models.CharField(max_length=64)

    state = models.CharField(max_length=10, choices=ChatState.choices, default=ChatState.QUEUED)
    created_at = models.DateTimeField()
    arrived_at = models.DateTimeField(help_text="original arrival; kept across re-queue and transfer")
    # [{"name": str, "queues": [queue slug], "wait": int | null}]
    plan = models.JSONField(default=list)
    step_index = models.IntegerField(default=-1)
    # Bumped each time the chat enters a step (also on transfer and re-queue): offers and declines
    # belong to one step serial, so "declined in this step" is a plain equality.
    step_serial = models.PositiveIntegerField(default=0)
    step_entered_at = models.DateTimeField(null=True, blank=True)
    max_wait_passed = models.BooleanField(default=False)
    transfer_note = models.TextField(blank=True)

    librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="chats")
    # A mentor who joined the chat beside its librarian (routing.mentoring): may write in it too, and
    # the patron is told. Cleared when the chat moves on (taken over, transferred, ended).
    second_librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="joined_chats")
    # A mentor's take-over waiting for the librarian's consent (routing.mentoring.takeover_answer).
    takeover_asked_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    answered_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="answered_chats", help_text="first librarian to accept")
    answered_step = models.CharField(max_length=50, blank=True)
    accepted_step_index = models.IntegerField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    first_accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=30, blank=True)

    last_seq = models.PositiveIntegerField(default=0)
    last_activity_at = models.DateTimeField()
    # The patron's lines stored in the current window of consortium.ratelimit.CHAT_MESSAGE (socket and
    # HTTP together), counted by the statement that stores them (routing.message_store).
    rate_window = models.BigIntegerField(default=0, db_default=0)
    rate_count = models.PositiveIntegerField(default=0, db_default=0)
    patron_joined = models.BooleanField(default=False)
    patron_left_at = models.DateTimeField(null=True, blank=True)

    deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    version = models.PositiveIntegerField(default=0)

    # Closing classification by the librarian (READ scale 1-6, tags, outcome).
    read_scale = models.PositiveSmallIntegerField(null=True, blank=True)
    subjects = models.JSONField(default=list, blank=True)
    outcome = models.CharField(max_length=20, blank=True)
    scrubbed = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["consortium", "state", "arrived_at"]),
            # A librarian's load (routing.selectors.presence_and_load), read on every routing decision:
            # their active chats only, not the ended ones that pile up over the years.
            models.Index(fields=["librarian"], condition=models.Q(state="active"),
                         name="routing_chat_active_librarian"),
        ]

    def __str__(self) -> str:
        return f"chat {self.id} ({self.state})"


class Message(models.Model):
    class Sender(models.TextChoices):
        PATRON = "patron", pgettext_lazy("who wrote a chat's line", "Patron")
        LIBRARIAN = "librarian", pgettext_lazy("who wrote a chat's line", "Librarian")
        SYSTEM = "system", pgettext_lazy("who wrote a chat's line", "System")

    # Every index is written at every message: the chat's lookups use message_seq_once (chat, seq),
    # so the chat has no index of its own; the librarian's and the file's cover only rows that have one.
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages", db_index=False)
    seq = models.PositiveIntegerField()
    sender = models.CharField(max_length=10, choices=Sender.choices)
    librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    name = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    client_id = models.CharField(max_length=64, null=True, blank=True)
    at = models.DateTimeField()
    # Internal notes are for staff only: never sent to the patron nor put in a patron's transcript.
    internal = models.BooleanField(default=False)
    # A whisper (routing.mentoring): an internal note a mentor addresses to the chat's librarian.
    whisper_to = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False)
    file = models.ForeignKey("ChatFile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             db_index=False)

    # Not a column: the chat's channel where it was at hand without a query of its own (a read's
    # annotate(chat_channel=...), or the service that stored the message), for its frame
    # (routing.frames.message_frame).
    chat_channel: str | None = None

    class Meta:
        ordering = ["chat", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["chat", "seq"], name="message_seq_once"),
            models.UniqueConstraint(fields=["chat", "sender", "client_id"], condition=Q(client_id__isnull=False),
                                    name="message_client_id_once"),
        ]
        indexes = [
            models.Index(fields=["librarian"], condition=Q(librarian__isnull=False), name="message_librarian"),
            models.Index(fields=["file"], condition=Q(file__isnull=False), name="message_file"),
        ]


class ChatFile(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    data = models.FileField(upload_to="chatfiles/%Y/%m/")
    uploaded_by = models.CharField(max_length=10)
    created_at = models.DateTimeField()


class Offer(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("an offer's status", "Open")
        ACCEPTED = "accepted", pgettext_lazy("an offer's status", "Accepted")
        DECLINED = "declined", pgettext_lazy("an offer's status", "Declined")
        EXPIRED = "expired", pgettext_lazy("an offer's status", "Expired")
        WITHDRAWN = "withdrawn", pgettext_lazy("an offer's status", "Withdrawn")

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="offers")
    librarian = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="offers")
    step_serial = models.PositiveIntegerField()
    step = models.CharField(max_length=50)
    queue = models.CharField(max_length=50)
    mode = models.CharField(max_length=10)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    closed_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=20, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chat", "librarian", "step_serial"], name="offer_once_per_step"),
        ]
        indexes = [models.Index(fields=["librarian", "status"]), models.Index(fields=["chat", "status"])]


class TraceEvent(models.Model):
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="trace")
    at = models.DateTimeField()
    kind = models.CharField(max_length=30)
    data = models.JSONField(default=dict)

    class Meta:
        ordering = ["chat", "at", "id"]
        # /metrics counts today's events by time (routing/metrics.py): a range on `at`, not the whole table.
        indexes = [models.Index(fields=["at"], name="routing_trace_at_idx")]


class LibrarianPresence(models.Model):
    """Whether a librarian can be offered chats: status, live connections and the reconnect grace."""

    class Status(models.TextChoices):
        AVAILABLE = "available", pgettext_lazy("a librarian's presence", "Available")
        AWAY = "away", pgettext_lazy("a librarian's presence", "Away")

    librarian = models.OneToOneField(StaffProfile, primary_key=True, on_delete=models.CASCADE,
                                     related_name="presence")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AWAY)
    online = models.BooleanField(default=False, help_text="a live connection, or inside the reconnect grace")
    grace_until = models.DateTimeField(null=True, blank=True, db_index=True)
    idle_since = models.DateTimeField(null=True, blank=True, help_text="for direct offers: longest idle first")
    changed_at = models.DateTimeField(null=True, blank=True)
    away_reason = models.CharField(max_length=30, blank=True)
    # The automatic away at the end of the shift (libraries/duty.py), while available: the end the
    # console has been told, whether its warning was sent, the next instant the timer must look
    # (the warning, then the end), and until when the librarian said they are staying on.
    shift_end = models.DateTimeField(null=True, blank=True)
    shift_warned = models.BooleanField(default=False)
    # A presence change is answered before the chats it concerns are routed again (by the web process,
    # right after). Until that is done, this says when the timer must do it instead: a web process
    # that dies in between leaves no chat un-offered (routing.services.presence.presence_change).
    reroute_due = models.DateTimeField(null=True, blank=True, db_index=True)
    shift_due = models.DateTimeField(null=True, blank=True, db_index=True)
    stay_until = models.DateTimeField(null=True, blank=True)


class StructureVersion(models.Model):
    """One row: a stamp that database triggers change whenever a consortium's structure changes
    (libraries, partners, queues, hours, staff, rota; migration 0009). routing.structure compares it
    with the stamp of the picture it keeps, instead of reading the structure for every decision."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    stamp = models.BigIntegerField()


class ServerProcess(models.Model):
    """A web process that holds sockets. When it stops heart-beating, its sockets count as closed."""

    id = models.CharField(primary_key=True, max_length=64)
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(db_index=True)


class Connection(models.Model):
    class Kind(models.TextChoices):
        STAFF = "staff", pgettext_lazy("a connection's kind", "Staff")
        PATRON = "patron", pgettext_lazy("a connection's kind", "Patron")

    channel_name = models.CharField(primary_key=True, max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    process = models.ForeignKey(ServerProcess, on_delete=models.CASCADE, related_name="connections")
    librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="connections")
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.CASCADE, related_name="connections")
    opened_at = models.DateTimeField()


class Ticket(models.Model):
    """A follow-up: a question a library answers later, by email."""

    class Status(models.TextChoices):
        NEW = "new", pgettext_lazy("a follow-up's status", "New")
        IN_PROGRESS = "in_progress", pgettext_lazy("a follow-up's status", "In progress")
        ANSWERED = "answered", pgettext_lazy("a follow-up's status", "Answered")
        CLOSED = "closed", pgettext_lazy("a follow-up's status", "Closed")

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="tickets")
    library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.PROTECT, related_name="tickets")
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    question = models.TextField()
    transcript = models.TextField(blank=True)
    patron_name = models.CharField(max_length=100, blank=True)
    patron_email = models.CharField(max_length=254)
    # The patron's language (as the ask page or widget gave it, or the chat's): the mails to the patron are in it.
    language = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)
    source = models.CharField(max_length=20)  # question_form | referral
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW)
    created_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    claimed_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    answer = models.TextField(blank=True)
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    # Deadlines (routing.followup_clock): when it must be answered, and whose rule said so
    # (consortium | library | patron); whose list it is on now (library | partners | consortium),
    # the next instant the sweep must look at it, and what the sweep did ([{"at", "kind", ...}]).
    due_at = models.DateTimeField(null=True, blank=True)
    due_from = models.CharField(max_length=10, blank=True)
    stage = models.CharField(max_length=10, default="library", db_default="library")
    reminded_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    history = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]


class Survey(models.Model):
    chat = models.OneToOneField(Chat, on_delete=models.CASCADE, related_name="survey")
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField()


class CannedResponse(models.Model):
    """A ready answer a librarian inserts into a chat, in one of three sets (routing.canned):

    - personal: `owner` set, kept by that librarian and offered only to them;
    - library: `library` set, kept by that library's admins;
    - consortium: neither, kept by the coordinators, offered in every chat of the consortium.

    It has an English text, a Spanish one or both; the console offers the chat's language first. The
    texts may hold placeholders ({patron}, {library}, {hours_today}, {librarian}, ...) that are filled
    in for the chat at hand (routing.canned.fill).
    """

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="canned_responses")
    library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="canned_responses",
                                help_text="empty: offered in every chat of the consortium")
    owner = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="canned_responses", help_text="set: this librarian's personal response")
    title = models.CharField(max_length=100)
    body = models.TextField(max_length=4000, blank=True, verbose_name="English text",
                            help_text="placeholders: {patron} {library} {hours_today} {librarian} "
                                      "{my_library} {consortium}")
    # db_default: rows written without it (raw SQL, older code) are English-only, not invalid.
    body_es = models.TextField(max_length=4000, blank=True, default="", db_default="",
                               verbose_name="Spanish text")

    class Meta:
        ordering = ["consortium", "library", "title"]
        constraints = [
            # A personal response belongs to a person, not to a library's set as well.
            models.CheckConstraint(condition=models.Q(owner__isnull=True) | models.Q(library__isnull=True),
                                   name="canned_personal_or_library",
                                   violation_error_message="A personal response belongs to no library's set."),
            models.CheckConstraint(condition=~models.Q(body="") | ~models.Q(body_es=""), name="canned_has_a_text",
                                   violation_error_message="Write the response in English, in Spanish or in both."),
        ]

    def __str__(self) -> str:
        return self.title


class SentMail(models.Model):
    """A mail a Celery task has sent, by the task's id: a task the broker gives out again (its worker
    died before acknowledging it) finds its row and does not send a second copy (routing.tasks)."""

    key = models.CharField(primary_key=True, max_length=100)
    sent_at = models.DateTimeField(db_index=True)


class TranscriptMail(models.Model):
    """One transcript mail asked for (routing.services.transcripts): the count per chat and per address
    that bounds them, kept in the database so that every process sees the same. The scrub blanks the
    address and keeps the row: the count still holds."""

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="transcript_mails")
    email = models.CharField(max_length=254, blank=True)
    asked_at = models.DateTimeField()


class PatronBlock(models.Model):
    """A patron kept from starting chats anywhere in a consortium until `expires_at` (routing.blocks).

    Keyed by what identifies the patron, each a SHA-256 so that no raw id is kept: the browser's device
    id, the phone for texts, and the address (IPv4, or the IPv6 /64) only until `address_until` (never
    more than a day: libraries' public computers share addresses). `hint` is the masked keys as staff
    see them. Active: not lifted and not expired; nothing needs to run for a block to end.
    """

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="patron_blocks")
    device_hash = models.CharField(max_length=64, blank=True)
    phone_hash = models.CharField(max_length=64, blank=True)
    address_hash = models.CharField(max_length=64, blank=True)
    address_until = models.DateTimeField(null=True, blank=True)
    hint = models.JSONField(default=dict, blank=True)  # {"device": "…3f9a", "phone": "…1234", "address": "…"}
    reason = models.TextField()
    created_by = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="blocks_made")
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.SET_NULL, related_name="blocks")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    lifted_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="blocks_lifted")
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_note = models.TextField(blank=True)
    # The audit: [{"at": iso, "by": staff id, "by_name": str, "action": "created" | "extended" | "lifted",
    #              "expires_at": iso, "note": str}], appended under the block's row lock.
    history = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["consortium", "device_hash", "expires_at"], name="routing_block_device"),
            models.Index(fields=["consortium", "phone_hash", "expires_at"], name="routing_block_phone"),
            models.Index(fields=["consortium", "address_hash", "expires_at"], name="routing_block_address"),
            models.Index(fields=["consortium", "created_at"], name="routing_block_created"),
        ]

    def __str__(self) -> str:
        return f"block {self.pk} until {self.expires_at:%Y-%m-%d %H:%M}"


class Mention(models.Model):
    """`@name` in an internal note (routing.mentions): the colleague named, of any library of the
    chat's consortium, is told, and may watch the chat read-only and whisper in it from then on."""

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="mentions")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    librarian = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="mentions")
    by = models.ForeignKey(StaffProfile, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["librarian", "chat"], name="routing_mention_librarian")]


class StaffRoomLine(models.Model):
    """A line of the consortium's staff room (routing.staff_room): a chat among its staff on duty,
    kept like internal notes and never shown to a patron. `seq` orders the room's lines as a chat's."""

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="staff_room_lines")
    seq = models.PositiveIntegerField()
    librarian = models.ForeignKey(StaffProfile, null=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=200)
    library = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    client_id = models.CharField(max_length=64, null=True, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["consortium", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["consortium", "seq"], name="staff_room_seq_once"),
            models.UniqueConstraint(fields=["consortium", "librarian", "client_id"],
                                    condition=Q(client_id__isnull=False), name="staff_room_client_id_once"),
        ]


class Share(models.Model):
    """One screen or page share in a chat (routing.sharing): who asked, whether the patron consented,
    when it started and ended, and why. Never what was shown: the picture goes peer to peer and the
    addresses of shared pages are relayed, not kept."""

    class Kind(models.TextChoices):
        SHOW = "show", pgettext_lazy("what is shared", "The librarian's screen")  # to the patron
        SEE = "see", pgettext_lazy("what is shared", "The patron's screen")  # to the librarian
        # The page of the library's site the patron is on.
        PAGE = "page", pgettext_lazy("what is shared", "The patron's page")

    class State(models.TextChoices):
        REQUESTED = "requested", pgettext_lazy("a share's state", "Requested")
        ACTIVE = "active", pgettext_lazy("a share's state", "Active")
        REFUSED = "refused", pgettext_lazy("a share's state", "Refused")
        ENDED = "ended", pgettext_lazy("a share's state", "Ended")

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="shares")
    kind = models.CharField(max_length=5, choices=Kind.choices)
    librarian = models.ForeignKey(StaffProfile, null=True, on_delete=models.SET_NULL, related_name="shares")
    state = models.CharField(max_length=10, choices=State.choices, default=State.REQUESTED)
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=10, blank=True)  # patron | librarian | server
    # stopped | refused | unsupported | failed | disconnected | chat_ended | transferred | librarian_lost
    end_reason = models.CharField(max_length=20, blank=True)

    class Meta:
        indexes = [models.Index(fields=["chat", "state"], name="routing_share_open")]
