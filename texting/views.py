"""Texting's HTTP endpoints. Thin: check, parse, call texting.inbound, answer."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from routing import files
from texting import inbound, signature
from texting.numbers import destination, masked
from texting.outbound import file_from_link

logger = logging.getLogger("texting")

MAX_MEDIA = 10  # Twilio sends at most 10 media with one message

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _twiml() -> HttpResponse:
    # Replies go out through the REST API (texting.outbound), never in this answer: it must be quick.
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


def texting_on() -> bool:
    return bool(settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN)


@csrf_exempt  # Twilio signs its requests instead (checked below); it has no CSRF cookie
@require_POST
def twilio_webhook(request: HttpRequest) -> HttpResponse:
    if not texting_on():
        raise Http404("texting is off")
    url = signature.webhook_url(request.get_full_path())
    if not signature.is_valid(url, request.POST, request.headers.get("X-Twilio-Signature", "")):
        logger.warning("texting webhook: a request without a valid Twilio signature was refused")
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    post = request.POST
    sid, phone, number = post.get("MessageSid", ""), post.get("From", ""), post.get("To", "")
    if not (sid and phone and number) or len(sid) > 64 or len(phone) > 32 or len(number) > 16:
        # Signed, so Twilio's; but not a Messaging webhook (a voice call configured to this address?).
        return HttpResponse("not a text: MessageSid, From and To are required", status=400,
                            content_type="text/plain")
    where = destination(number)
    if where is None:
        # 200, so that the provider does not retry what will never be ours.
        logger.warning("texting webhook: a text to %s, which is no consortium's or library's number", number)
        return _twiml()
    count = post.get("NumMedia", "0")
    media = [{"url": post.get(f"MediaUrl{i}", ""), "type": post.get(f"MediaContentType{i}", "")}
             for i in range(min(int(count) if count.isdigit() else 0, MAX_MEDIA))]
    text = inbound.Text(sid=sid, phone=phone, number=number, body=post.get("Body", ""), media=media)
    received = inbound.receive(text, where, timezone.now())
    if received.kind == "duplicate":
        logger.info("texting webhook: %s from %s again (a provider retry): stored once", sid, masked(phone))
    return _twiml()


@require_GET
def file_link(request: HttpRequest, token: str) -> HttpResponse:
    """A file a librarian sent in an SMS chat, by the signed link the text carried."""
    stored = file_from_link(token)
    if stored is None or not stored.data:
        raise Http404("no such file, or no longer kept")
    with stored.data.open("rb") as handle:
        response = HttpResponse(handle.read(), content_type=stored.content_type)  # at most files.MAX_BYTES
    response["Content-Disposition"] = content_disposition_header(
        stored.content_type not in files.INLINE_TYPES, stored.name) or "attachment"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
