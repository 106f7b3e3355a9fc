"""The Celery task that sends a text (texting.outbound.deliver), tried again with backoff."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

# Imported with the task module, as the worker starts (before it forks its pool), not at a task's
# first run: the per-minute task then costs no first-run import in each pool process, which the soak
# (tests/faults/test_soak.py) saw as memory still growing after its warm-up.
from texting.idle import queued_sms_chats_expire
from texting.media import take
from texting.models import OutboundText
from texting.outbound import deliver
from texting.privacy import scrub_expired


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_text(self: Any, text_id: str) -> str:
    outcome = deliver(text_id)
    if outcome.retry_in is None:
        return outcome.status
    if self.request.is_eager:
        # Run in-process (the embedded default, the in-process tests): no broker to wait on, so the
        # tries follow at once. A text held back by a limit stays queued there (no worker to come back).
        for _ in settings.TWILIO_RETRY_DELAYS:
            outcome = deliver(text_id)
            if outcome.retry_in is None:
                break
        return outcome.status
    # The row keeps the count of tries; Celery's own count is only the way back here.
    raise self.retry(countdown=outcome.retry_in)


@shared_task(acks_late=True)
def texts_scrub_expired() -> int:
    """Nightly, from Celery beat: texts and phones past the retention (texting.privacy)."""
    return scrub_expired(timezone.now())


@shared_task(acks_late=True)
def take_media(inbound_id: int) -> int:
    """The pictures and files of one text, fetched and posted into its chat (texting.media)."""
    return take(inbound_id)


# A text still queued this long after it was made has lost its task (the broker lost it, or the
# worker's retry): every try of a live task is over by then (TWILIO_RETRY_DELAYS add up to ~10 min).
STUCK_AFTER = 20 * 60


@shared_task(acks_late=True)
def texts_resend_stuck() -> int:
    """Every few minutes, from Celery beat: hand a text whose task was lost to a worker again. Sending
    stays once: the task sends only a row still queued, under its lock (texting.outbound)."""
    since = timezone.now() - timedelta(seconds=STUCK_AFTER)
    stuck = list(OutboundText.objects.filter(status=OutboundText.Status.QUEUED, created_at__lt=since)
                 .values_list("pk", flat=True)[:500])
    for text_id in stuck:
        send_text.delay(text_id)
    return len(stuck)


@shared_task(acks_late=True)
def sms_queued_idle() -> int:
    """Every minute, from Celery beat: a texted question nobody took within sms_idle (texting.idle)."""
    return queued_sms_chats_expire(timezone.now())
