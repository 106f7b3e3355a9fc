"""Celery tasks of the alerts: the evaluation every minute (from beat) and the mail to coordinators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from alerts.evaluate import alerts_evaluate
from alerts.models import Alert
from alerts.text import alert_text, fix_label
from consortium.models import Consortium
from libraries.models import StaffProfile
from routing.tasks import send_once


@shared_task(acks_late=True)
def alerts_evaluate_all(at: str | None = None) -> dict[str, int]:
    """Every minute, from Celery beat: every active consortium's alerts, at `at` (ISO 8601; tests
    inject the instant) or now. Returns how many alerts each consortium mailed."""
    now: datetime | None = parse_datetime(at) if at else None
    now = now or timezone.now()
    return {c.slug: len(alerts_evaluate(c, now)) for c in Consortium.objects.filter(is_active=True)}


def coordinators_to_mail(consortium: Consortium) -> list[StaffProfile]:
    return list(StaffProfile.objects.filter(library__consortium=consortium, role=StaffProfile.Role.COORDINATOR,
                                            is_active=True, user__is_active=True)
                .exclude(user__email="").select_related("user").order_by("user__email"))


def alerts_mail_text(consortium: Consortium, alerts: list[Alert]) -> tuple[str, str]:
    """The subject and body of one mail of these alerts, in the active language: each alert, then the
    address of the page that fixes it."""
    subject = _("%(consortium)s: %(count)s alert(s) need a coordinator") % {
        "consortium": consortium.name, "count": len(alerts)}
    lines = [_("These need attention now:"), ""]
    for alert in alerts:
        lines += [f"- {alert_text(alert.kind, alert.detail)}",
                  f"  {fix_label(alert.kind)}: {settings.PUBLIC_URL}{alert.link}", ""]
    lines += [_("The live board shows every alert while it lasts: %(url)s") % {
        "url": f"{settings.PUBLIC_URL}/coordinator/{consortium.slug}/"},
        _("Each alert is mailed at most once an hour while it lasts.")]
    return subject, "\n".join(lines) + "\n"


@shared_task(bind=True, acks_late=True)
def mail_alerts(self: Any, consortium_id: int, alert_ids: list[int]) -> int:
    """The alerts just raised (or due again after the throttle) to each coordinator of the consortium,
    in the coordinator's language. Once per task and address (routing.tasks.send_once). Returns the mails sent."""
    consortium = Consortium.objects.filter(pk=consortium_id).first()
    alerts = list(Alert.objects.filter(pk__in=alert_ids, active=True).order_by("raised_at", "key"))
    if consortium is None or not alerts:
        return 0
    sent = 0
    for profile in coordinators_to_mail(consortium):
        with translation.override(profile.language or settings.LANGUAGE_CODE):
            subject, body = alerts_mail_text(consortium, alerts)
        key = f"{self.request.id}:{profile.user.email}" if self.request.id else None
        sent += send_once(key, subject=subject, message=body, from_email=None, recipient_list=[profile.user.email])
    return sent
