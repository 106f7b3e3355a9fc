"""Files in a chat: images and PDFs only, recognised by their first bytes, never by name or by what
the browser claims. A file is stored as a ChatFile and posted into the chat as a message whose frame
carries `file` (routing.frames.message_frame), so it reaches everyone in order like any message."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from libraries.models import StaffProfile
from routing.models import LIVE_STATES, Chat, ChatFile, Message
from routing.services import chats, common

MAX_BYTES = 10 * 1024 * 1024
# Multipart framing around the file: a request longer than the limit plus this is refused unread.
MULTIPART_SLACK = 64 * 1024

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
              "application/pdf": "pdf"}
# Shown in the browser; PDFs are downloaded, since a viewer may run a PDF's scripts in our origin.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


class FileRefused(Exception):
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
    data: bytes
    name: str
    content_type: str


def check(upload: UploadedFile) -> Upload:
    if upload.size is not None and upload.size > MAX_BYTES:
        raise FileRefused(413, "too_large", f"files are limited to {MAX_BYTES // (1024 * 1024)} MB")
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise FileRefused(413, "too_large", f"files are limited to {MAX_BYTES // (1024 * 1024)} MB")
    if not data:
        raise FileRefused(400, "invalid", "the file is empty")
    content_type = sniff(data[:16])
    if content_type is None:
        raise FileRefused(400, "unsupported_type", "only images (PNG, JPEG, GIF, WebP) and PDF files can be sent")
    return Upload(data=data, name=clean_name(upload.name or "", content_type), content_type=content_type)


def post(chat: Chat, upload: Upload, *, sender: str, librarian: StaffProfile | None = None,
         client_id: str | None = None) -> tuple[Message, bool]:
    """Store the file and post it into the chat. Idempotent by client_id like any message."""
    if client_id:
        existing = Message.objects.select_related("file").filter(chat=chat, sender=sender, client_id=client_id).first()
        if existing is not None:
            return existing, False
    if chat.state not in LIVE_STATES:
        raise common.ServiceError("ended", "this chat is over")
    now = timezone.now()
    stored = ChatFile(chat=chat, name=upload.name, content_type=upload.content_type, size=len(upload.data),
                      uploaded_by=sender, created_at=now)
    stored.data.save(f"{stored.pk}.{EXTENSIONS[upload.content_type]}", ContentFile(upload.data), save=False)
    try:
        with transaction.atomic():
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


def find(chat: Chat, file_id: str) -> ChatFile | None:
    return ChatFile.objects.filter(chat=chat, pk=file_id).first()
