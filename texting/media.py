"""MMS: what the patron sends besides words (docs/sms.md, "MMS").

Each media item of a text is fetched from the provider with the account's credentials, by a worker
after the webhook has answered (the answer must be quick). It is checked by its first bytes as an
upload is (routing.files: images and PDF only, at most files.MAX_BYTES, the chat's and the
consortium's bounds), stored and posted into the chat like a file the patron sent. Anything else,
or a file past a bound, is refused with one text saying so.

A text that became a follow-up (nobody on duty, or added to one) keeps its files all the same: they
go into the transcript of the follow-up's chat (routing.files.keep), and the follow-up's page lists
them for whoever answers it. So does a text whose chat ended before its files were fetched.

Only addresses on the provider's API host are fetched (TWILIO_API_BASE): a signed webhook names them,
but the credentials go to no other host. Twilio answers such an address with a redirect to its file
store; the credentials are not carried over the redirect."""

from __future__ import annotations

import base64
import logging
import urllib.error
import urllib.request
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from routing import files
from routing.models import LIVE_STATES, Chat
from routing.services.common import ServiceError
from texting.models import InboundText, OutboundText, SmsChat
from texting.outbound import text_queue

logger = logging.getLogger("texting")

REFUSED = ("We could not take the file you sent: only pictures (PNG, JPEG, GIF, WebP) and PDF files up to "
           f"{files.MAX_BYTES // (1024 * 1024)} MB. Please describe it in words instead.")


class MediaRefused(Exception):
    pass


def fetch(url: str) -> bytes:
    """The media's bytes, at most files.MAX_BYTES; MediaRefused when it cannot be had or is too large."""
    if not url.startswith(settings.TWILIO_API_BASE + "/"):
        raise MediaRefused(f"not on the provider's host: {url[:80]}")
    request = urllib.request.Request(url)
    credentials = f"{settings.TWILIO_ACCOUNT_SID}:{settings.TWILIO_AUTH_TOKEN}".encode()
    request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(credentials).decode())
    try:
        with urllib.request.urlopen(request, timeout=settings.TWILIO_TIMEOUT) as response:
            data: bytes = response.read(files.MAX_BYTES + 1)
    except (urllib.error.URLError, OSError) as e:
        raise MediaRefused(f"cannot fetch it: {e}") from e
    if len(data) > files.MAX_BYTES:
        raise MediaRefused("too large")
    return data


def take(inbound_id: int, now: datetime | None = None) -> int:
    """Fetch, check and post the media of one text into its chat (kept in it if the chat is over, as
    when the text became a follow-up). Returns how many were posted."""
    now = now or timezone.now()
    inbound = InboundText.objects.select_related("patron").filter(pk=inbound_id).first()
    if inbound is None or inbound.chat_id is None or not inbound.media:
        return 0
    chat = Chat.objects.select_related("consortium").filter(pk=inbound.chat_id).first()
    if chat is None:
        return 0
    posted, refused = 0, False
    for i, item in enumerate(inbound.media):
        try:
            data = fetch(str(item.get("url", "")))
            content_type = files.sniff(data[:16])
            if not data or content_type is None:
                raise MediaRefused(f"not a picture or a PDF ({str(item.get('type', ''))[:40]})")
            upload = files.Upload(data=data, name=files.clean_name(f"text-{i + 1}", content_type),
                                  content_type=content_type)
            _store(chat, upload, client_id=f"{inbound.message_sid}-{i}"[:64])
            posted += 1
        except (MediaRefused, files.FileRefused) as e:
            logger.info("media %d of a text refused: %s", i, e)
            refused = True
        except ServiceError:
            break  # the chat is gone or scrubbed: nothing to keep it in
    if refused:
        link = SmsChat.objects.filter(chat_id=chat.pk).first()
        number = link.number if link else inbound.number
        # One refusal a text, even if this task is run again.
        if not OutboundText.objects.filter(chat=chat, kind=OutboundText.Kind.REFUSED,
                                           created_at__gte=inbound.received_at).exists():
            text_queue(inbound.patron, kind=OutboundText.Kind.REFUSED, body=REFUSED, from_number=number, now=now,
                       chat=chat)
    return posted


def _store(chat: Chat, upload: files.Upload, *, client_id: str) -> None:
    """Into the live chat, shown in the console at once; into a chat that is over (a follow-up's, or
    one that ended while the file was fetched), kept in its transcript for the follow-up."""
    if chat.state in LIVE_STATES:
        try:
            files.post(chat, upload, sender="patron", client_id=client_id)
            return
        except ServiceError as e:
            if e.reason != "ended":
                raise
    files.keep(chat, upload, client_id=client_id)
