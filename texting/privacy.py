"""A phone number is personal data (docs/sms.md, "Privacy"; docs/privacy.md): scrubbed on the retention
schedule like an email address, and deletable on request.

- Nightly (`scrub_expired`): texts in and out older than the consortium's retention are deleted
  (their words are in the chat's messages, which routing.privacy scrubs on the same schedule), and
  so is a phone that has not texted within it and has no chat still kept, unless it opted out: a
  STOP is honoured for as long as the number is known, and it is known only by that row.
- On request (`phone_forget`): every chat from the phone is deleted as routing.privacy.chat_forget
  deletes a chat (an anonymous row stays for the statistics), and the phone with its texts."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from consortium.models import Consortium
from routing import privacy as routing_privacy
from texting.models import InboundText, OutboundText, SmsChat, SmsPatron


def scrub_expired(now: datetime) -> int:
    """Returns how many phones were forgotten."""
    forgotten = 0
    for consortium in Consortium.objects.all():
        cutoff = now - timedelta(days=consortium.transcript_retention_days)
        with transaction.atomic():
            InboundText.objects.filter(patron__consortium=consortium, received_at__lt=cutoff).delete()
            OutboundText.objects.filter(consortium=consortium, created_at__lt=cutoff).exclude(
                status=OutboundText.Status.QUEUED).delete()
            kept_chats = SmsChat.objects.filter(chat__scrubbed=False).values("patron_id")
            stale = (SmsPatron.objects.filter(consortium=consortium, last_text_at__lt=cutoff, opted_out_at=None)
                     .exclude(pk__in=kept_chats))
            forgotten += stale.delete()[1].get(SmsPatron._meta.label, 0)
    return forgotten


def phone_forget(phone: str, now: datetime) -> int:
    """Delete everything kept about a phone, in every consortium. Returns how many chats were deleted."""
    chat_ids = list(SmsChat.objects.filter(patron__phone=phone).values_list("chat_id", flat=True))
    for chat_id in chat_ids:
        routing_privacy.chat_forget(chat_id, now)
    SmsPatron.objects.filter(Q(phone=phone)).delete()
    return len(chat_ids)
