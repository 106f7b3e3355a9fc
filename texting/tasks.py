"""The Celery task that sends a text (texting.outbound.deliver), tried again with backoff."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from texting.outbound import deliver


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
    from django.utils import timezone

    from texting.privacy import scrub_expired

    return scrub_expired(timezone.now())


@shared_task(acks_late=True)
def take_media(inbound_id: int) -> int:
    """The pictures and files of one text, fetched and posted into its chat (texting.media)."""
    from texting.media import take

    return take(inbound_id)
