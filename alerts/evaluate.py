"""The evaluation: conditions seen now (alerts.conditions) against the rows kept from the runs before.

Run every minute by Celery beat (alerts.tasks), with the instant passed in (tests inject it). For each
consortium, in one transaction that holds the consortium's row (so two runs at once, on two workers,
take turns and never mail the same alert twice):

- a condition seen for the first time gets a row, `first_seen_at` now; one seen again keeps it;
- it is **raised** once it has held its `after` (a queue unstaffed for N minutes), at once otherwise;
- a raised alert is **mailed** when the consortium mails alerts and it was not mailed in the last
  `THROTTLE` (one mail per condition per hour, however often it comes and goes); the mail task is
  sent after commit, one task per run with every alert due;
- a row whose condition no longer holds is no longer active (nor raised): the board drops it. Rows
  ended for longer than `KEPT` are deleted (the throttle needs them for an hour only).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction

from alerts.conditions import conditions_now
from alerts.models import Alert
from consortium.models import Consortium, alert_settings_of

THROTTLE = timedelta(hours=1)
KEPT = timedelta(days=1)


def alerts_evaluate(consortium: Consortium, now: datetime) -> list[int]:
    """Evaluate the consortium's alerts at `now`; returns the ids of the alerts to mail (sent after commit)."""
    from alerts.tasks import mail_alerts  # the task module imports this one

    settings = alert_settings_of(consortium)
    found = {condition.key: condition for condition in conditions_now(consortium, settings, now)}
    with transaction.atomic():
        Consortium.objects.select_for_update().filter(pk=consortium.pk).values_list("pk", flat=True).first()
        rows = {row.key: row for row in Alert.objects.filter(consortium=consortium, key__in=list(found))}
        due: list[int] = []
        for key, condition in found.items():
            row = rows.get(key)
            if row is None:
                row = Alert(consortium=consortium, key=key, kind=condition.kind, first_seen_at=now)
            elif not row.active:
                row.first_seen_at, row.raised_at = now, None  # held again: counted afresh
            row.active, row.last_seen_at = True, now
            row.detail, row.link = condition.detail, condition.link
            if row.raised_at is None and now - row.first_seen_at >= condition.after:
                row.raised_at = now
            mail_now = (row.raised_at is not None and settings.mail
                        and (row.mailed_at is None or now - row.mailed_at >= THROTTLE))
            if mail_now:
                row.mailed_at = now
            row.save()
            if mail_now:
                due.append(row.pk)
        Alert.objects.filter(consortium=consortium, active=True).exclude(key__in=list(found)).update(
            active=False, raised_at=None)
        Alert.objects.filter(consortium=consortium, active=False, last_seen_at__lt=now - KEPT).delete()
        if due:
            transaction.on_commit(lambda: mail_alerts.delay(consortium.pk, sorted(due)))
    return due


def raised_alerts(consortium: Consortium) -> list[Alert]:
    """The alerts raised now, oldest first: what the live board shows."""
    return list(Alert.objects.filter(consortium=consortium, active=True, raised_at__isnull=False)
                .order_by("raised_at", "key"))
