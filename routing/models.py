"""Chats and everything that happens to them: messages, offers, the trace, tickets, presence.

The database is the truth. Every deadline the router must honour is stored on the chat
(`Chat.deadline`) or on the librarian's presence (`LibrarianPresence.grace_until`), so any process
can pick routing up where a dead one left it.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
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
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False, verbose_name=_("id"))
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="chats",
                                   verbose_name=_("consortium"))
    channel = models.CharField(max_length=5, choices=Channel.choices, default=Channel.WEB, verbose_name=_("channel"))
    home_library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="home_chats", verbose_name=_("home library"))
    home_found_by = models.CharField(max_length=10, default="none",
                                     verbose_name=_("home found by"))  # library | zip | none
    question = models.TextField(verbose_name=_("question"))
    language = models.CharField(max_length=16, blank=True, verbose_name=_("language"))
    patron_name = models.CharField(max_length=100, blank=True, verbose_name=_("patron name"))
    patron_email = models.CharField(max_length=254, blank=True, verbose_name=_("patron email"))
    patron_ip = models.GenericIPAddressField(null=True, blank=True, verbose_name=_("patron ip"))
    # The SHA-256 of the random id the patron's browser keeps (docs/protocol.md, "device"): what a block
    # is keyed by first (routing.blocks). Blank for texts and for clients that send none.
    patron_device = models.CharField(max_length=64, blank=True, verbose_name=_("patron device"))
    # The patron ticked "remember me on this device" (off by default): only such chats of one device
    # are linked (routing.returning), shown to librarians as earlier chats and given a head start.
    remembered = models.BooleanField(default=False, db_default=False, verbose_name=_("remembered"))
    token_hash = models.CharField(max_length=64, verbose_name=_("token hash"))

    state = models.CharField(max_length=10, choices=ChatState.choices, default=ChatState.QUEUED,
                             verbose_name=_("state"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    arrived_at = models.DateTimeField(help_text=_("original arrival; kept across re-queue and transfer"),
                                      verbose_name=_("arrived at"))
    # [{"name": str, "queues": [queue slug], "wait": int | null}]
    plan = models.JSONField(default=list, verbose_name=_("plan"))
    step_index = models.IntegerField(default=-1, verbose_name=_("step index"))
    # Bumped each time the chat enters a step (also on transfer and re-queue): offers and declines
    # belong to one step serial, so "declined in this step" is a plain equality.
    step_serial = models.PositiveIntegerField(default=0, verbose_name=_("step serial"))
    step_entered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("step entered at"))
    max_wait_passed = models.BooleanField(default=False, verbose_name=_("max wait passed"))
    transfer_note = models.TextField(blank=True, verbose_name=_("transfer note"))

    librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="chats", verbose_name=_("librarian"))
    # A mentor who joined the chat beside its librarian (routing.mentoring): may write in it too, and
    # the patron is told. Cleared when the chat moves on (taken over, transferred, ended).
    second_librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="joined_chats", verbose_name=_("second librarian"))
    # A mentor's take-over waiting for the librarian's consent (routing.mentoring.takeover_answer).
    takeover_asked_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+", verbose_name=_("takeover asked by"))
    answered_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="answered_chats", help_text=_("first librarian to accept"),
                                    verbose_name=_("answered by"))
    answered_step = models.CharField(max_length=50, blank=True, verbose_name=_("answered step"))
    accepted_step_index = models.IntegerField(null=True, blank=True, verbose_name=_("accepted step index"))
    accepted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("accepted at"))
    first_accepted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("first accepted at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))
    end_reason = models.CharField(max_length=30, blank=True, verbose_name=_("end reason"))

    last_seq = models.PositiveIntegerField(default=0, verbose_name=_("last seq"))
    last_activity_at = models.DateTimeField(verbose_name=_("last activity at"))
    # The patron's lines stored in the current window of consortium.ratelimit.CHAT_MESSAGE (socket and
    # HTTP together), counted by the statement that stores them (routing.message_store).
    rate_window = models.BigIntegerField(default=0, db_default=0, verbose_name=_("rate window"))
    rate_count = models.PositiveIntegerField(default=0, db_default=0, verbose_name=_("rate count"))
    patron_joined = models.BooleanField(default=False, verbose_name=_("patron joined"))
    patron_left_at = models.DateTimeField(null=True, blank=True, verbose_name=_("patron left at"))

    deadline = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name=_("deadline"))
    version = models.PositiveIntegerField(default=0, verbose_name=_("version"))

    # Closing classification by the librarian (READ scale 1-6, tags, outcome).
    read_scale = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("read scale"))
    subjects = models.JSONField(default=list, blank=True, verbose_name=_("subjects"))
    outcome = models.CharField(max_length=20, blank=True, verbose_name=_("outcome"))
    scrubbed = models.BooleanField(default=False, verbose_name=_("scrubbed"))

    class Meta:
        verbose_name = _("chat")
        verbose_name_plural = _("chats")
        indexes = [
            models.Index(fields=["consortium", "state", "arrived_at"]),
            # A librarian's load (routing.selectors.presence_and_load), read on every routing decision:
            # their active chats only, not the ended ones that pile up over the years.
            models.Index(fields=["librarian"], condition=models.Q(state="active"),
                         name="routing_chat_active_librarian"),
            # The chats going on, counted by admission once a second (routing.admission): a few thousand
            # entries at most, where the table keeps every chat of the years.
            models.Index(fields=["state"], condition=models.Q(state__in=LIVE_STATES),
                         name="routing_chat_live"),
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
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="messages", db_index=False,
                             verbose_name=_("chat"))
    seq = models.PositiveIntegerField(verbose_name=_("seq"))
    sender = models.CharField(max_length=10, choices=Sender.choices, verbose_name=_("sender"))
    librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, db_index=False,
                                  verbose_name=_("librarian"))
    name = models.CharField(max_length=200, blank=True, verbose_name=_("name"))
    body = models.TextField(verbose_name=_("body"))
    client_id = models.CharField(max_length=64, null=True, blank=True, verbose_name=_("client id"))
    at = models.DateTimeField(verbose_name=_("at"))
    # Internal notes are for staff only: never sent to the patron nor put in a patron's transcript.
    internal = models.BooleanField(default=False, verbose_name=_("internal"))
    # A whisper (routing.mentoring): an internal note a mentor addresses to the chat's librarian.
    whisper_to = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", db_index=False, verbose_name=_("whisper to"))
    file = models.ForeignKey("ChatFile", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                             db_index=False, verbose_name=_("file"))

    # Not a column: the chat's channel where it was at hand without a query of its own (a read's
    # annotate(chat_channel=...), or the service that stored the message), for its frame
    # (routing.frames.message_frame).
    chat_channel: str | None = None

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
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
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False, verbose_name=_("id"))
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="files", verbose_name=_("chat"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    content_type = models.CharField(max_length=100, verbose_name=_("content type"))
    size = models.PositiveIntegerField(verbose_name=_("size"))
    data = models.FileField(upload_to="chatfiles/%Y/%m/", verbose_name=_("data"))
    uploaded_by = models.CharField(max_length=10, verbose_name=_("uploaded by"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("chat file")
        verbose_name_plural = _("chat files")


class Offer(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("an offer's status", "Open")
        ACCEPTED = "accepted", pgettext_lazy("an offer's status", "Accepted")
        DECLINED = "declined", pgettext_lazy("an offer's status", "Declined")
        EXPIRED = "expired", pgettext_lazy("an offer's status", "Expired")
        WITHDRAWN = "withdrawn", pgettext_lazy("an offer's status", "Withdrawn")

    # No index of their own: (chat, ...) and (librarian, status) below serve every lookup by either, and
    # a broadcast writes a row per librarian of its step, each row an entry in every index (a chat's
    # own id index and its text-pattern twin, and the librarian's, were three of seven).
    # No foreign-key constraint in the database either (OFFER_AND_TRACE_KEYS).
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="offers", db_index=False,
                             db_constraint=False, verbose_name=_("chat"))
    librarian = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="offers", db_index=False,
                                  db_constraint=False, verbose_name=_("librarian"))
    step_serial = models.PositiveIntegerField(verbose_name=_("step serial"))
    step = models.CharField(max_length=50, verbose_name=_("step"))
    queue = models.CharField(max_length=50, verbose_name=_("queue"))
    mode = models.CharField(max_length=10, verbose_name=_("mode"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, verbose_name=_("status"))
    closed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("closed at"))
    reason = models.CharField(max_length=20, blank=True, verbose_name=_("reason"))

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        constraints = [
            models.UniqueConstraint(fields=["chat", "librarian", "step_serial"], name="offer_once_per_step"),
        ]
        indexes = [models.Index(fields=["librarian", "status"]), models.Index(fields=["chat", "status"])]


# OFFER_AND_TRACE_KEYS. Offers and trace lines keep their chat and librarian without a foreign-key
# constraint in the database. A broadcast writes an offer and a trace line per librarian of its step,
# and PostgreSQL checked each row's keys at COMMIT, one query per key: three per librarian, 2.3 ms of a
# 50-librarian step and 6.7 ms of a shared queue's 190 (bench/write_bench.py), the largest part of a
# step timeout. What the constraints guarded is kept by the only writers and deleters instead:
# - they are written only by routing (routing.services.route.Writes, and accept/decline's updates),
#   under the lock of their chat's row, which exists (it is locked) and is never deleted (a chat is
#   scrubbed, routing.privacy, not removed);
# - a librarian is deleted only through Django (the admin, or their user), whose collector deletes
#   their offers (on_delete CASCADE, which Django carries out itself, constraint or not), and a
#   librarian who ever had a chat cannot be deleted at all (Chat.librarian is PROTECT);
# - an open offer made at the very instant its librarian was deleted reaches no one (nobody signs in
#   as them), and the router withdraws it the next time it looks at the chat, as it does any open
#   offer to someone no longer eligible.


class TraceEvent(models.Model):
    # Indexed in Meta: a key's own index brings a text-pattern twin (for LIKE, which nothing asks of a
    # chat id), one more entry for each of a broadcast's trace lines. No foreign-key constraint in the
    # database (OFFER_AND_TRACE_KEYS).
    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="trace", db_index=False,
                             db_constraint=False, verbose_name=_("chat"))
    at = models.DateTimeField(verbose_name=_("at"))
    kind = models.CharField(max_length=30, verbose_name=_("kind"))
    data = models.JSONField(default=dict, verbose_name=_("data"))

    class Meta:
        verbose_name = _("trace event")
        verbose_name_plural = _("trace events")
        ordering = ["chat", "at", "id"]
        # /metrics counts today's events by time (routing/metrics.py): a range on `at`, not the whole table.
        indexes = [models.Index(fields=["at"], name="routing_trace_at_idx"),
                   models.Index(fields=["chat"], name="routing_trace_chat")]


class LibrarianPresence(models.Model):
    """Whether a librarian can be offered chats: status, live connections and the reconnect grace."""

    class Status(models.TextChoices):
        AVAILABLE = "available", pgettext_lazy("a librarian's presence", "Available")
        AWAY = "away", pgettext_lazy("a librarian's presence", "Away")

    librarian = models.OneToOneField(StaffProfile, primary_key=True, on_delete=models.CASCADE,
                                     related_name="presence", verbose_name=_("librarian"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.AWAY, verbose_name=_("status"))
    online = models.BooleanField(default=False, help_text=_("a live connection, or inside the reconnect grace"),
                                 verbose_name=_("online"))
    grace_until = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name=_("grace until"))
    idle_since = models.DateTimeField(null=True, blank=True, help_text=_("for direct offers: longest idle first"),
                                      verbose_name=_("idle since"))
    changed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("changed at"))
    away_reason = models.CharField(max_length=30, blank=True, verbose_name=_("away reason"))
    # The automatic away at the end of the shift (libraries/duty.py), while available: the end the
    # console has been told, whether its warning was sent, the next instant the timer must look
    # (the warning, then the end), and until when the librarian said they are staying on.
    shift_end = models.DateTimeField(null=True, blank=True, verbose_name=_("shift end"))
    shift_warned = models.BooleanField(default=False, verbose_name=_("shift warned"))
    # A presence change is answered before the chats it concerns are routed again (by the web process,
    # right after). Until that is done, this says when the timer must do it instead: a web process
    # that dies in between leaves no chat un-offered (routing.services.presence.presence_change).
    reroute_due = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name=_("reroute due"))
    shift_due = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name=_("shift due"))
    stay_until = models.DateTimeField(null=True, blank=True, verbose_name=_("stay until"))

    class Meta:
        verbose_name = _("librarian presence")
        verbose_name_plural = _("librarian presences")


class StructureVersion(models.Model):
    """One row: a stamp that database triggers change whenever a consortium's structure changes
    (libraries, partners, queues, hours, staff, rota; migration 0009). routing.structure compares it
    with the stamp of the picture it keeps, instead of reading the structure for every decision."""

    id = models.PositiveSmallIntegerField(primary_key=True, verbose_name=_("id"))
    stamp = models.BigIntegerField(verbose_name=_("stamp"))

    class Meta:
        verbose_name = _("structure version")
        verbose_name_plural = _("structure versions")


class ServerProcess(models.Model):
    """A web process that holds sockets. When it stops heart-beating, its sockets count as closed."""

    id = models.CharField(primary_key=True, max_length=64, verbose_name=_("id"))
    started_at = models.DateTimeField(verbose_name=_("started at"))
    heartbeat_at = models.DateTimeField(db_index=True, verbose_name=_("heartbeat at"))

    class Meta:
        verbose_name = _("server process")
        verbose_name_plural = _("server processes")


class Connection(models.Model):
    class Kind(models.TextChoices):
        STAFF = "staff", pgettext_lazy("a connection's kind", "Staff")
        PATRON = "patron", pgettext_lazy("a connection's kind", "Patron")

    channel_name = models.CharField(primary_key=True, max_length=200, verbose_name=_("channel name"))
    kind = models.CharField(max_length=10, choices=Kind.choices, verbose_name=_("kind"))
    process = models.ForeignKey(ServerProcess, on_delete=models.CASCADE, related_name="connections",
                                verbose_name=_("process"))
    librarian = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="connections", verbose_name=_("librarian"))
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.CASCADE, related_name="connections",
                             verbose_name=_("chat"))
    opened_at = models.DateTimeField(verbose_name=_("opened at"))

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")


class Ticket(models.Model):
    """A follow-up: a question a library answers later, by email."""

    class Status(models.TextChoices):
        NEW = "new", pgettext_lazy("a follow-up's status", "New")
        IN_PROGRESS = "in_progress", pgettext_lazy("a follow-up's status", "In progress")
        ANSWERED = "answered", pgettext_lazy("a follow-up's status", "Answered")
        CLOSED = "closed", pgettext_lazy("a follow-up's status", "Closed")

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False, verbose_name=_("id"))
    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="tickets",
                                   verbose_name=_("consortium"))
    library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.PROTECT, related_name="tickets",
                                verbose_name=_("library"))
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets",
                             verbose_name=_("chat"))
    question = models.TextField(verbose_name=_("question"))
    transcript = models.TextField(blank=True, verbose_name=_("transcript"))
    patron_name = models.CharField(max_length=100, blank=True, verbose_name=_("patron name"))
    patron_email = models.CharField(max_length=254, verbose_name=_("patron email"))
    # The patron's language (as the ask page or widget gave it, or the chat's): the mails to the patron are in it.
    language = models.CharField(max_length=16, blank=True, verbose_name=_("language"))
    note = models.TextField(blank=True, verbose_name=_("note"))
    source = models.CharField(max_length=20, verbose_name=_("source"))  # question_form | referral
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW, verbose_name=_("status"))
    created_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("created by"))
    claimed_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("claimed by"))
    answer = models.TextField(blank=True, verbose_name=_("answer"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    answered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("answered at"))

    # Deadlines (routing.followup_clock): when it must be answered, and whose rule said so
    # (consortium | library | patron); whose list it is on now (library | partners | consortium),
    # the next instant the sweep must look at it, and what the sweep did ([{"at", "kind", ...}]).
    due_at = models.DateTimeField(null=True, blank=True, verbose_name=_("due at"))
    due_from = models.CharField(max_length=10, blank=True, verbose_name=_("due from"))
    stage = models.CharField(max_length=10, default="library", db_default="library", verbose_name=_("stage"))
    reminded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("reminded at"))
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True, verbose_name=_("next check at"))
    history = models.JSONField(default=list, blank=True, verbose_name=_("history"))

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at"]


class Survey(models.Model):
    chat = models.OneToOneField(Chat, on_delete=models.CASCADE, related_name="survey", verbose_name=_("chat"))
    rating = models.PositiveSmallIntegerField(verbose_name=_("rating"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))
    created_at = models.DateTimeField(verbose_name=_("created at"))

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")


class CannedResponse(models.Model):
    """A ready answer a librarian inserts into a chat, in one of three sets (routing.canned):

    - personal: `owner` set, kept by that librarian and offered only to them;
    - library: `library` set, kept by that library's admins;
    - consortium: neither, kept by the coordinators, offered in every chat of the consortium.

    It has an English text, a Spanish one or both; the console offers the chat's language first. The
    texts may hold placeholders ({patron}, {library}, {hours_today}, {librarian}, ...) that are filled
    in for the chat at hand (routing.canned.fill).
    """

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="canned_responses",
                                   verbose_name=_("consortium"))
    library = models.ForeignKey(Library, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="canned_responses",
                                help_text=_("empty: offered in every chat of the consortium"),
                                verbose_name=_("library"))
    owner = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="canned_responses", help_text=_("set: this librarian's personal response"),
                              verbose_name=_("owner"))
    title = models.CharField(max_length=100, verbose_name=_("title"))
    body = models.TextField(max_length=4000, blank=True, verbose_name=_("English text"),
                            help_text=_("placeholders: {patron} {library} {hours_today} {librarian} "
                                      "{my_library} {consortium}"))
    # db_default: rows written without it (raw SQL, older code) are English-only, not invalid.
    body_es = models.TextField(max_length=4000, blank=True, default="", db_default="",
                               verbose_name=_("Spanish text"))

    class Meta:
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")
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

    key = models.CharField(primary_key=True, max_length=100, verbose_name=_("key"))
    sent_at = models.DateTimeField(db_index=True, verbose_name=_("sent at"))

    class Meta:
        verbose_name = _("sent mail")
        verbose_name_plural = _("sent mails")


class TranscriptMail(models.Model):
    """One transcript mail asked for (routing.services.transcripts): the count per chat and per address
    that bounds them, kept in the database so that every process sees the same. The scrub blanks the
    address and keeps the row: the count still holds."""

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="transcript_mails", verbose_name=_("chat"))
    email = models.CharField(max_length=254, blank=True, verbose_name=_("email"))
    asked_at = models.DateTimeField(verbose_name=_("asked at"))

    class Meta:
        verbose_name = _("transcript mail")
        verbose_name_plural = _("transcript mails")


class PatronBlock(models.Model):
    """A patron kept from starting chats anywhere in a consortium until `expires_at` (routing.blocks).

    Keyed by what identifies the patron, each a SHA-256 so that no raw id is kept: the browser's device
    id, the phone for texts, and the address (IPv4, or the IPv6 /64) only until `address_until` (never
    more than a day: libraries' public computers share addresses). `hint` is the masked keys as staff
    see them. Active: not lifted and not expired; nothing needs to run for a block to end.
    """

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="patron_blocks",
                                   verbose_name=_("consortium"))
    device_hash = models.CharField(max_length=64, blank=True, verbose_name=_("device hash"))
    phone_hash = models.CharField(max_length=64, blank=True, verbose_name=_("phone hash"))
    address_hash = models.CharField(max_length=64, blank=True, verbose_name=_("address hash"))
    address_until = models.DateTimeField(null=True, blank=True, verbose_name=_("address until"))
    hint = models.JSONField(default=dict, blank=True,
                            verbose_name=_("hint"))  # {"device": "…3f9a", "phone": "…1234", "address": "…"}
    reason = models.TextField(verbose_name=_("reason"))
    created_by = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="blocks_made",
                                   verbose_name=_("created by"))
    chat = models.ForeignKey(Chat, null=True, blank=True, on_delete=models.SET_NULL, related_name="blocks",
                             verbose_name=_("chat"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    expires_at = models.DateTimeField(verbose_name=_("expires at"))
    lifted_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="blocks_lifted", verbose_name=_("lifted by"))
    lifted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("lifted at"))
    lift_note = models.TextField(blank=True, verbose_name=_("lift note"))
    # The audit: [{"at": iso, "by": staff id, "by_name": str, "action": "created" | "extended" | "lifted",
    #              "expires_at": iso, "note": str}], appended under the block's row lock.
    history = models.JSONField(default=list, blank=True, verbose_name=_("history"))

    class Meta:
        verbose_name = _("patron block")
        verbose_name_plural = _("patron blocks")
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

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="mentions", verbose_name=_("chat"))
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                verbose_name=_("message"))
    librarian = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="mentions",
                                  verbose_name=_("librarian"))
    by = models.ForeignKey(StaffProfile, null=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("by"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    seen_at = models.DateTimeField(null=True, blank=True, verbose_name=_("seen at"))

    class Meta:
        verbose_name = _("mention")
        verbose_name_plural = _("mentions")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["librarian", "chat"], name="routing_mention_librarian")]


class StaffRoomLine(models.Model):
    """A line of the consortium's staff room (routing.staff_room): a chat among its staff on duty,
    kept like internal notes and never shown to a patron. `seq` orders the room's lines as a chat's."""

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="staff_room_lines",
                                   verbose_name=_("consortium"))
    seq = models.PositiveIntegerField(verbose_name=_("seq"))
    librarian = models.ForeignKey(StaffProfile, null=True, on_delete=models.SET_NULL, related_name="+",
                                  verbose_name=_("librarian"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    library = models.CharField(max_length=200, blank=True, verbose_name=_("library"))
    body = models.TextField(verbose_name=_("body"))
    client_id = models.CharField(max_length=64, null=True, blank=True, verbose_name=_("client id"))
    at = models.DateTimeField(verbose_name=_("at"))

    class Meta:
        verbose_name = _("staff room line")
        verbose_name_plural = _("staff room lines")
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

    chat = models.ForeignKey(Chat, on_delete=models.CASCADE, related_name="shares", verbose_name=_("chat"))
    kind = models.CharField(max_length=5, choices=Kind.choices, verbose_name=_("kind"))
    librarian = models.ForeignKey(StaffProfile, null=True, on_delete=models.SET_NULL, related_name="shares",
                                  verbose_name=_("librarian"))
    state = models.CharField(max_length=10, choices=State.choices, default=State.REQUESTED, verbose_name=_("state"))
    requested_at = models.DateTimeField(verbose_name=_("requested at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    ended_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ended at"))
    ended_by = models.CharField(max_length=10, blank=True, verbose_name=_("ended by"))  # patron | librarian | server
    # stopped | refused | unsupported | failed | disconnected | chat_ended | transferred | librarian_lost
    end_reason = models.CharField(max_length=20, blank=True, verbose_name=_("end reason"))

    class Meta:
        verbose_name = _("share")
        verbose_name_plural = _("shares")
        indexes = [models.Index(fields=["chat", "state"], name="routing_share_open")]
