"""Admin for chats and what happens to them: coordinators look, the router writes.

A chat, its messages, offers and trace are the record of what the router and the people did, so
they are read-only for everyone, superusers included; that record is what answers "why did this
chat go to library B". Tickets are the one thing here a coordinator edits (triage: which library,
who has it, its status). Sockets and processes are the operator's, visible to superusers only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from consortium.scoping import (
    ALL_ACTIONS,
    CHANGE,
    READ_ONLY,
    VIEW,
    ScopedModelAdmin,
    ScopedTabularInline,
    is_library_admin,
    is_superuser,
    user_consortium_id,
)
from routing import access, whispers
from routing.models import (
    CannedResponse,
    Chat,
    ChatFile,
    Connection,
    LibrarianPresence,
    Message,
    Offer,
    ServerProcess,
    Survey,
    Ticket,
    TraceEvent,
)

# Superusers may still delete a record (say, at a patron's request), never rewrite it.
RECORD_FOR_SUPERUSER = frozenset({VIEW, "delete"})


class _RecordInline(ScopedTabularInline):
    read_only = True
    can_delete = False
    show_change_link = False


class TraceEventInline(_RecordInline):
    model = TraceEvent
    fields = ("at", "kind", "data")
    ordering = ("at", "id")
    verbose_name_plural = "trace"


def _whispers_kept(messages: QuerySet[Message], request: HttpRequest) -> QuerySet[Message]:
    """A coordinator reads a chat's messages here, but a whisper only as its addressee or author
    (routing.whispers); a superuser, who runs the service and its database, reads every row."""
    if is_superuser(request.user):
        return messages
    reader = access.staff_of(request.user)
    return messages.filter(whispers.visible_q(reader.pk if reader else None))


class MessageInline(_RecordInline):
    model = Message
    fields = ("seq", "at", "sender", "name", "internal", "body")
    ordering = ("seq",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return _whispers_kept(super().get_queryset(request), request)


class OfferInline(_RecordInline):
    model = Offer
    fields = ("step_serial", "step", "queue", "librarian", "mode", "status", "reason", "created_at",
              "closed_at")
    ordering = ("created_at", "id")


class _ChatRecordAdmin(ScopedModelAdmin):
    path_to_consortium = "chat__consortium"
    superuser_actions = RECORD_FOR_SUPERUSER
    coordinator_actions = READ_ONLY


@admin.register(Chat)
class ChatAdmin(ScopedModelAdmin):
    path_to_consortium = "consortium"
    superuser_actions = RECORD_FOR_SUPERUSER
    coordinator_actions = READ_ONLY
    inlines = (TraceEventInline, MessageInline, OfferInline)
    list_display = ("id", "arrived_at", "home_library", "state", "answered_step", "librarian", "end_reason")
    list_filter = ("state", "answered_step", "end_reason",
                   ("home_library", admin.RelatedOnlyFieldListFilter),
                   ("consortium", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("home_library", "librarian__user")
    search_fields = ("id", "question", "patron_name", "patron_email")
    date_hierarchy = "arrived_at"
    ordering = ("-arrived_at",)
    fieldsets = (
        (None, {"fields": ("id", "consortium", "home_library", "home_found_by", "state", "question",
                           "language")}),
        ("Patron", {"fields": ("patron_name", "patron_email", "patron_ip", "patron_joined", "patron_left_at",
                               "scrubbed")}),
        ("Routing", {"fields": ("created_at", "arrived_at", "plan", "step_index", "step_serial",
                                "step_entered_at", "max_wait_passed", "deadline", "transfer_note")}),
        ("Answer", {"fields": ("librarian", "answered_by", "answered_step", "accepted_at",
                               "first_accepted_at", "ended_at", "end_reason", "read_scale", "subjects",
                               "outcome")}),
    )


@admin.register(Message)
class MessageAdmin(_ChatRecordAdmin):
    list_display = ("chat", "seq", "at", "sender", "name", "internal")
    list_filter = ("sender", "internal")
    search_fields = ("chat__id", "body")
    ordering = ("-at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return _whispers_kept(super().get_queryset(request), request)


@admin.register(TraceEvent)
class TraceEventAdmin(_ChatRecordAdmin):
    list_display = ("chat", "at", "kind")
    list_filter = ("kind",)
    search_fields = ("chat__id", "kind")
    ordering = ("-at", "-id")


@admin.register(Offer)
class OfferAdmin(_ChatRecordAdmin):
    list_display = ("chat", "librarian", "step", "queue", "mode", "status", "created_at")
    list_filter = ("status", "mode", "step")
    list_select_related = ("librarian__user",)
    search_fields = ("chat__id", "queue")
    ordering = ("-created_at",)


@admin.register(ChatFile)
class ChatFileAdmin(_ChatRecordAdmin):
    list_display = ("chat", "name", "content_type", "size", "uploaded_by", "created_at")
    search_fields = ("chat__id", "name")
    ordering = ("-created_at",)


@admin.register(Survey)
class SurveyAdmin(_ChatRecordAdmin):
    list_display = ("chat", "rating", "created_at")
    list_filter = ("rating",)
    search_fields = ("chat__id", "comment")
    ordering = ("-created_at",)


@admin.register(Ticket)
class TicketAdmin(ScopedModelAdmin):
    path_to_consortium = "consortium"
    coordinator_actions = frozenset({VIEW, CHANGE})
    list_display = ("created_at", "library", "status", "patron_email", "claimed_by", "source")
    list_filter = ("status", "source", ("library", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("library", "claimed_by__user")
    search_fields = ("id", "question", "patron_name", "patron_email")
    date_hierarchy = "created_at"
    TRIAGE_FIELDS = ("library", "status", "claimed_by", "note")

    def get_readonly_fields(self, request: HttpRequest, obj: Ticket | None = None) -> Any:
        if is_superuser(request.user):
            return ()
        # A coordinator routes the follow-up; the question, the transcript and the answer sent to
        # the patron stay as they were.
        return [f.name for f in Ticket._meta.fields if f.name not in self.TRIAGE_FIELDS]


@admin.register(LibrarianPresence)
class LibrarianPresenceAdmin(ScopedModelAdmin):
    path_to_consortium = "librarian__library__consortium"
    # Presence is the router's live state: changing it by hand would offer chats to nobody.
    superuser_actions = RECORD_FOR_SUPERUSER
    coordinator_actions = READ_ONLY
    list_display = ("librarian", "status", "online", "changed_at", "away_reason")
    list_filter = ("status", "online")
    list_select_related = ("librarian__user", "librarian__library")
    search_fields = ("librarian__user__username",)


@admin.register(ServerProcess)
class ServerProcessAdmin(ScopedModelAdmin):
    superuser_actions = ALL_ACTIONS - {"add", "change"}
    list_display = ("id", "started_at", "heartbeat_at")


@admin.register(Connection)
class ConnectionAdmin(ScopedModelAdmin):
    superuser_actions = ALL_ACTIONS - {"add", "change"}
    list_display = ("channel_name", "kind", "process", "librarian", "chat", "opened_at")
    list_filter = ("kind",)


@admin.register(CannedResponse)
class CannedResponseAdmin(ScopedModelAdmin):
    """Coordinators keep the consortium's responses (and any library's); library admins their library's.
    Personal responses are their owner's alone (routing.canned): kept on the staff page, never here."""

    path_to_consortium = "consortium"
    path_to_library = "library"
    coordinator_actions = ALL_ACTIONS
    library_admin_actions = ALL_ACTIONS
    list_display = ("title", "library", "consortium")
    list_filter = (("library", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("library", "consortium")
    search_fields = ("title", "body")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).filter(owner__isnull=True)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if is_superuser(request.user):
            return ("consortium", "library", "title", "body", "body_es")
        # Everyone else has exactly one consortium: it is taken from the account, not chosen.
        return ("library", "title", "body", "body_es")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        if is_library_admin(request.user) and "library" in form.base_fields:
            # A consortium-wide response would fall outside what a library admin may see or edit.
            form.base_fields["library"].required = True
        return form

    def save_model(self, request: HttpRequest, obj: CannedResponse, form: Any, change: bool) -> None:
        if obj.library_id is not None and obj.library is not None:
            obj.consortium_id = obj.library.consortium_id  # a library's response lives in its consortium
        elif not is_superuser(request.user):
            consortium_id = user_consortium_id(request.user)
            assert consortium_id is not None
            obj.consortium_id = consortium_id
        super().save_model(request, obj, form, change)
