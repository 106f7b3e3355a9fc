"""Mail tasks are acknowledged late: a task handed out again (its worker died before acknowledging it)
runs again with the same task id, and must not mail the patron a second time."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from routing.models import SentMail
from routing.tasks import mail_transcript
from tests.routing.routing_helpers import T0, start, world

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_mail_task_run_again_with_its_task_id_sends_no_second_mail() -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="home", question="Census of 1850?")
    mail_transcript.apply(args=[chat.pk, "pat@example.org"], task_id="task-1")
    mail_transcript.apply(args=[chat.pk, "pat@example.org"], task_id="task-1")  # handed out again
    assert [m.to for m in mail.outbox] == [["pat@example.org"]]
    assert "Census of 1850?" in mail.outbox[0].body
    assert SentMail.objects.filter(key="task-1").count() == 1


def test_two_requests_are_two_mails() -> None:
    w = world()
    chat = start(w.consortium, T0, library_slug="home", question="Census of 1850?")
    mail_transcript.apply(args=[chat.pk, "pat@example.org"], task_id="task-1")
    mail_transcript.apply(args=[chat.pk, "pat@example.org"], task_id="task-2")  # the patron asked twice
    assert len(mail.outbox) == 2


def test_a_mail_that_failed_to_send_is_sent_by_the_run_again(settings: Any) -> None:
    """The key is written in the sending's transaction: a send that raised leaves no key behind."""
    w = world()
    chat = start(w.consortium, T0, library_slug="home", question="Census of 1850?")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens
    with pytest.raises(OSError):
        mail_transcript.apply(args=[chat.pk, "pat@example.org"], task_id="task-1").get()
    assert not SentMail.objects.filter(key="task-1").exists()
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail_transcript.apply(args=[chat.pk, "pat@example.org"], task_id="task-1")
    assert len(mail.outbox) == 1


def test_keys_older_than_a_month_are_pruned_nightly() -> None:
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from routing.tasks import sent_mail_prune

    now = timezone.now()
    SentMail.objects.create(key="old", sent_at=now - timedelta(days=31))
    SentMail.objects.create(key="recent", sent_at=now - timedelta(days=1))
    assert sent_mail_prune.apply().get() == 1
    assert list(SentMail.objects.values_list("key", flat=True)) == ["recent"]
    assert settings.CELERY_BEAT_SCHEDULE["prune-sent-mail"]["task"] == sent_mail_prune.name
