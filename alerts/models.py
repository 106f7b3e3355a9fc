"""One row per alert condition of a consortium, seen by the evaluation (alerts.evaluate).

The row is what makes an alert exact across processes and runs: when its condition was first seen
(a queue must stay unstaffed `queue_unstaffed_minutes` before it is raised), whether it is raised now
(the board shows those), and when it was last mailed (the throttle: one mail per condition per hour).
Rows are kept when the condition ends (`active` false), so that a condition that flaps is still mailed
at most once an hour.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from consortium.models import Consortium


class Alert(models.Model):
    class Kind(models.TextChoices):
        QUEUE_UNSTAFFED = "queue_unstaffed", pgettext_lazy("an alert's kind", "A queue nobody answers")
        UNSTAFFED_RATE = "unstaffed_rate", pgettext_lazy("an alert's kind", "Many chats unanswered")
        SHIFT_ABSENT = "shift_absent", pgettext_lazy("an alert's kind", "A librarian absent from their shift")
        POLICY_STALE = "policy_stale", pgettext_lazy("an alert's kind", "A policy page out of date")
        FOLLOWUPS_OVERDUE = "followups_overdue", pgettext_lazy("an alert's kind", "Follow-ups overdue")

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="alerts",
                                   verbose_name=_("consortium"))
    # What the condition is about, stable from one run to the next: "queue:statewide", "policy:12".
    key = models.CharField(max_length=200, verbose_name=_("key"))
    kind = models.CharField(max_length=20, choices=Kind.choices, verbose_name=_("kind"))
    # The figures of the condition as last seen (names, counts), for its text in each reader's language.
    detail = models.JSONField(default=dict, verbose_name=_("detail"))
    link = models.CharField(max_length=500, help_text=_("the page where a coordinator fixes it"),
                            verbose_name=_("link"))
    first_seen_at = models.DateTimeField(verbose_name=_("first seen at"))
    last_seen_at = models.DateTimeField(verbose_name=_("last seen at"))
    raised_at = models.DateTimeField(null=True, blank=True, verbose_name=_("raised at"))
    active = models.BooleanField(default=True, verbose_name=_("active"))
    mailed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("mailed at"))

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["consortium", "raised_at", "key"]
        constraints = [models.UniqueConstraint(fields=["consortium", "key"], name="alert_key_per_consortium")]
        indexes = [models.Index(fields=["consortium", "active"])]

    def __str__(self) -> str:
        return f"{self.consortium.slug}: {self.key}"
