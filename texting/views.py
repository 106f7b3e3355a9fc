"""Texting's HTTP endpoints. Thin: check, parse, call texting.inbound, answer."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from consortium.models import Consortium
from libraries.consortium_file.schema import E164
from libraries.models import Library
from routing import files
from texting import inbound, signature, simulator
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
def twilio_webhook(request: HttpRequest) -> HttpResponse:
    if not texting_on():
        raise Http404("texting is off")  # whatever the method: off is off
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    url = signature.webhook_url(request.get_full_path())
    return webhook_answer(request.POST, url, request.headers.get("X-Twilio-Signature", ""))


def webhook_answer(post: Mapping[str, str], url: str, signed_as: str) -> HttpResponse:
    """What the webhook answers a POST to `url` (also the demo's simulator's way in: texting.simulator)."""
    if not signature.is_valid(url, post, signed_as):
        logger.warning("texting webhook: a request without a valid Twilio signature was refused")
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
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
    return files.download(stored)


# --- the demo's SMS simulator (texting.simulator) -----------------------------------------------------


def _simulator_on() -> None:
    if not (settings.SMS_SIMULATOR and texting_on()):
        raise Http404("the SMS simulator runs only in the demo (python3 dev.py demo)")


@require_GET
def simulator_page(request: HttpRequest) -> HttpResponse:
    _simulator_on()
    numbers = [(c.sms_number, c.name) for c in Consortium.objects.exclude(sms_number=None).order_by("name")]
    numbers += [(lib.sms_number, lib.name) for lib in Library.objects.exclude(sms_number=None).order_by("name")]
    return render(request, "texting/simulator.html", {"numbers": numbers})


@require_GET
def simulator_texts(request: HttpRequest) -> HttpResponse:
    _simulator_on()
    return JsonResponse({"texts": simulator.texts_of(request.GET.get("phone", ""))})


@require_POST
def simulator_send(request: HttpRequest) -> HttpResponse:
    """The phone sends a text: signed as Twilio signs it and handed to the webhook's own code."""
    _simulator_on()
    phone, to, body = (request.POST.get(k, "").strip() for k in ("phone", "to", "body"))
    if not E164.match(phone) or not E164.match(to) or not body or len(body) > 1600:
        return JsonResponse({"error": "a phone number like +15555550123, a number to text, and 1-1600 "
                                      "characters"}, status=400)
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": settings.TWILIO_ACCOUNT_SID,
              "From": phone, "To": to, "Body": body, "NumMedia": "0"}
    url = signature.webhook_url(reverse("sms-twilio"))
    simulator.record(simulator.SimulatedText(to=to, from_=phone, body=body, at=simulator.now_text(),
                                             direction="in"))  # first: an answer may come back at once
    answer = webhook_answer(params, url, signature.sign(url, params))
    return JsonResponse({"status": answer.status_code}, status=200 if answer.status_code == 200 else 502)
