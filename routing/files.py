"""Files in a chat: images and PDFs only, recognised by their first bytes, never by name or by what
the browser claims. A file is stored as a ChatFile and posted into the chat as a message whose frame
carries `file` (routing.frames.message_frame), so it reaches everyone in order like any message.

Bounds (docs/security.md, "Uploads"): a file is at most MAX_BYTES; a chat holds at most
settings.CHAT_FILES_MAX_COUNT files and settings.CHAT_FILES_MAX_BYTES bytes, counted in the database
under the chat's row lock so that two processes cannot both take the last place; a consortium's
unscrubbed chats hold at most settings.CONSORTIUM_FILES_BUDGET_BYTES. An upload is never held whole in
memory: Django spools it to a temporary file (FILE_UPLOAD_MAX_MEMORY_SIZE) and the storage moves or
copies it in chunks."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Count, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _

from libraries.models import StaffProfile
from routing import events, frames
from routing.models import LIVE_STATES, Chat, ChatFile, Message
from routing.selectors import with_chat_channel
from routing.services import chats, common

MAX_BYTES = 10 * 1024 * 1024
# Multipart framing around the file: a request longer than the limit plus this is refused unread.
MULTIPART_SLACK = 64 * 1024

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
              "application/pdf": "pdf"}
# Shown in the browser; PDFs are downloaded, since a viewer may run a PDF's scripts in our origin.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


class FileRefused(Exception):
    """A file refused, its `detail` in the reader's language (a librarian's console shows it after the file's
    name; the patron's page words a refusal itself, by its code)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def sniff(head: bytes) -> str | None:
    """The content type that the bytes themselves show, among the kinds a chat accepts."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean_name(name: str, content_type: str) -> str:
    """A display name that is safe in a header and a transcript, ending in the real type's extension."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C")
    base = re.sub(r"[\"<>;]", "_", base).strip(" .") or "file"
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{stem[:150]}.{EXTENSIONS[content_type]}"


@dataclass(frozen=True)
class Upload:
    """A checked file: its bytes (`data`, small files made in code) or the uploaded file (`file`, which
    may be a temporary file on disk: it is never read whole)."""

    data: bytes
    name: str
    content_type: str
    file: File | None = None
    file_size: int = 0

    @property
    def size(self) -> int:
        return self.file_size if self.file is not None else len(self.data)

    def content(self) -> File:
        return self.file if self.file is not None else ContentFile(self.data)


def _too_large() -> FileRefused:
    return FileRefused(413, "too_large", _("files are limited to %(mb)d MB") % {"mb": MAX_BYTES // (1024 * 1024)})


def check(upload: UploadedFile) -> Upload:
    """The upload's type from its first bytes and its size as received; only the head is read."""
    size = upload.size or 0
    if size > MAX_BYTES:
        raise _too_large()
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not head or size == 0:
        raise FileRefused(400, "invalid", _("the file is empty"))
    content_type = sniff(head)
    if content_type is None:
        raise FileRefused(400, "unsupported_type", _("only images (PNG, JPEG, GIF, WebP) and PDF files can be sent"))
    return Upload(data=b"", name=clean_name(upload.name or "", content_type), content_type=content_type,
                  file=upload, file_size=size)


@dataclass(frozen=True)
class Usage:
    count: int
    size: int


def chat_usage(chat_id: str) -> Usage:
    row = ChatFile.objects.filter(chat_id=chat_id).aggregate(n=Count("pk"), total=Sum("size"))
    return Usage(count=row["n"] or 0, size=row["total"] or 0)


def consortium_usage(consortium_id: int) -> int:
    """Bytes stored for the consortium's unscrubbed chats (scrubbing deletes a chat's files)."""
    total = ChatFile.objects.filter(chat__consortium_id=consortium_id, chat__scrubbed=False).aggregate(
        total=Sum("size"))["total"]
    return int(total or 0)


def room_check(chat: Chat, size: int) -> None:
    """Refuse a file of `size` bytes that would take the chat or its consortium past their bounds. Under the
    chat's row lock (post) this is exact for the chat; the consortium's budget may be overshot by the files
    of other chats uploading at the same instant, a few files at most."""
    usage = chat_usage(chat.pk)
    if usage.count >= settings.CHAT_FILES_MAX_COUNT:
        raise FileRefused(413, "too_many_files",
                          _("a chat can hold at most %(count)d files") % {"count": settings.CHAT_FILES_MAX_COUNT})
    if usage.size + size > settings.CHAT_FILES_MAX_BYTES:
        raise FileRefused(413, "chat_files_too_large", _("the files of a chat are limited to %(mb)d MB in all")
                          % {"mb": settings.CHAT_FILES_MAX_BYTES // (1024 * 1024)})
    if consortium_usage(chat.consortium_id) + size > settings.CONSORTIUM_FILES_BUDGET_BYTES:
        raise FileRefused(413, "over_budget", _("the service cannot store more files now: try again later"))


def post(chat: Chat, upload: Upload, *, sender: str, librarian: StaffProfile | None = None,
         client_id: str | None = None) -> tuple[Message, bool]:
    """Store the file and post it into the chat. Idempotent by client_id like any message."""
    if client_id:
        existing = _posted(chat.pk, sender, client_id)
        if existing is not None:
            return existing, False
    if chat.state not in LIVE_STATES:
        raise common.ServiceError("ended", "this chat is over")
    room_check(chat, upload.size)  # before writing to disk: most refusals cost nothing
    now = timezone.now()
    stored = ChatFile(chat=chat, name=upload.name, content_type=upload.content_type, size=upload.size,
                      uploaded_by=sender, created_at=now)
    # The storage moves a temporary upload into place, or copies it chunk by chunk: never whole in memory.
    stored.data.save(f"{stored.pk}.{EXTENSIONS[upload.content_type]}", upload.content(), save=False)
    try:
        with transaction.atomic():
            locked = common.chat_lock(chat.pk)
            if locked is None:
                raise common.ServiceError("not_found", "no such chat")
            room_check(locked, upload.size)  # again under the lock: the count every process agrees on
            stored.save()
            message, created = chats.message_post(chat.pk, sender=sender, body=upload.name, client_id=client_id,
                                                     now=now, librarian=librarian, file_id=stored.pk)
    except Exception:
        stored.data.delete(save=False)  # no message, no file: a refused post leaves nothing behind
        raise
    if not created:
        stored.data.delete(save=False)
        stored.delete()
    return message, created


def keep(chat: Chat, upload: Upload, *, client_id: str) -> tuple[Message, bool]:
    """Store a file the patron sent into a chat that is over: a text's picture that arrived when the
    chat had become a follow-up (nobody on duty) or ended meanwhile (texting.media). Nothing a patron
    sends is lost: with the same checks and bounds as `post`, the file is stored and posted into the
    chat's transcript as the patron's message (its seq taken under the chat's lock, as every message's
    is), where the follow-up's handler finds it (routing.staff: the follow-up's page lists its chat's
    files). Idempotent by client_id. A scrubbed chat keeps nothing: ServiceError."""
    existing = _posted(chat.pk, Message.Sender.PATRON, client_id)
    if existing is not None:
        return existing, False
    room_check(chat, upload.size)
    now = timezone.now()
    stored = ChatFile(chat=chat, name=upload.name, content_type=upload.content_type, size=upload.size,
                      uploaded_by=Message.Sender.PATRON, created_at=now)
    stored.data.save(f"{stored.pk}.{EXTENSIONS[upload.content_type]}", upload.content(), save=False)
    try:
        with transaction.atomic():
            locked = common.chat_lock(chat.pk)
            if locked is None or locked.scrubbed:
                raise common.ServiceError("not_found", "no such chat")
            existing = _posted(locked.pk, Message.Sender.PATRON, client_id)
            if existing is None:
                room_check(locked, upload.size)
                stored.save()
                locked.last_seq += 1
                message = Message.objects.create(chat=locked, seq=locked.last_seq, sender=Message.Sender.PATRON,
                                                 name=locked.patron_name, body=upload.name, client_id=client_id,
                                                 at=now, file=stored)
                locked.save(update_fields=["last_seq"])
                events.to_chat(locked.pk, frames.message_frame(message, locked.channel), seq=message.seq)
    except Exception:
        stored.data.delete(save=False)
        raise
    if existing is not None:
        stored.data.delete(save=False)
        return existing, False
    return message, True


def _posted(chat_id: str, sender: str, client_id: str) -> Message | None:
    return with_chat_channel(Message.objects.select_related("file").filter(
        chat_id=chat_id, sender=sender, client_id=client_id)).first()


def find(chat: Chat, file_id: str) -> ChatFile | None:
    return ChatFile.objects.filter(chat=chat, pk=file_id).first()


def download(stored: ChatFile) -> HttpResponse:
    """A stored file as its answer: pictures shown, PDFs downloaded, and nothing in it may run."""
    with stored.data.open("rb") as handle:
        response = HttpResponse(handle.read(), content_type=stored.content_type)  # at most MAX_BYTES
    response["Content-Disposition"] = content_disposition_header(
        stored.content_type not in INLINE_TYPES, stored.name) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    # Even if a browser were talked into rendering it as a page, nothing in it may run.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
