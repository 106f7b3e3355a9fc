"""Transcript review (docs/coordinators.md, "Transcript review"): each month a sample of every library's
answered chats is scored against the consortium's rubric by reviewers of other libraries, and the
scores go to the answering library's liaisons (and, if the consortium chooses, to the librarian).

The rows: the consortium's settings and rubric (criteria), who reviews and who is a liaison, one
sampling run per library and month (what makes a second run assign nothing twice), the reviews and
their scores.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from consortium.models import Consortium
from libraries.models import Library, StaffProfile
from routing.models import Chat

MAX_SCALE = 10


class ReviewSettings(models.Model):
    """How many chats of each library are reviewed a month, and who hears the scores."""

    class SampleKind(models.TextChoices):
        PERCENT = "percent", pgettext_lazy("a monthly sample", "a percentage of its answered chats")
        COUNT = "count", pgettext_lazy("a monthly sample", "a number of chats")

    consortium = models.OneToOneField(Consortium, on_delete=models.CASCADE, related_name="review_settings",
                                      verbose_name=_("consortium"))
    sample_kind = models.CharField(max_length=10, choices=SampleKind.choices, default=SampleKind.COUNT,
                                   verbose_name=_("sample kind"))
    sample_value = models.PositiveSmallIntegerField(
        default=5, help_text=_("per library and month: a percentage (0-100) or a number of chats (0: none)"),
        verbose_name=_("sample value"))
    share_with_librarian = models.BooleanField(
        default=False, help_text=_("the answering librarian also sees the scores and comments of their chats"),
        verbose_name=_("share with librarian"))

    class Meta:
        verbose_name = _("review settings")
        verbose_name_plural = _("review settings")

    def clean(self) -> None:
        super().clean()
        if self.sample_kind == self.SampleKind.PERCENT and self.sample_value > 100:
            raise ValidationError({"sample_value": gettext("a percentage is 0 to 100")})


class ReviewRoles(models.Model):
    """A librarian's part in transcript review: a reviewer scores other libraries' chats; a liaison
    receives the reviews of their own library's chats. Set by the consortium's coordinators."""

    staff = models.OneToOneField(StaffProfile, on_delete=models.CASCADE, related_name="review_roles",
                                 verbose_name=_("staff"))
    reviewer = models.BooleanField(default=False, verbose_name=_("reviewer"))
    liaison = models.BooleanField(default=False, verbose_name=_("liaison"))

    class Meta:
        verbose_name = _("review roles")
        verbose_name_plural = _("review roles")


class Criterion(models.Model):
    """One line of the consortium's rubric: scored from 1 to `scale`, each point with its label."""

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="review_criteria",
                                   verbose_name=_("consortium"))
    position = models.PositiveSmallIntegerField(default=0, verbose_name=_("position"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    guidance = models.TextField(blank=True, help_text=_("what the reviewer looks for"), verbose_name=_("guidance"))
    scale = models.PositiveSmallIntegerField(
        default=4, help_text=format_lazy(_("the highest score, 2 to {most}"), most=MAX_SCALE), verbose_name=_("scale"))
    # One label per point, lowest first ("Not observed", ..., "Exemplary"); empty: the numbers alone.
    labels = models.JSONField(default=list, blank=True, verbose_name=_("labels"))
    # Criteria that have been scored are switched off, never deleted: past scores keep their meaning.
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        verbose_name = _("criterion")
        verbose_name_plural = _("criteria")
        ordering = ["consortium", "position", "pk"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if not 2 <= self.scale <= MAX_SCALE:
            raise ValidationError({"scale": gettext("the highest score is 2 to %(most)d") % {"most": MAX_SCALE}})
        if self.labels and len(self.labels) != self.scale:
            raise ValidationError({"labels": gettext("one label per point: %(scale)d labels, or none")
                                   % {"scale": self.scale}})

    def label(self, value: int) -> str:
        if self.labels and 1 <= value <= len(self.labels):
            return f"{value} · {self.labels[value - 1]}"
        return str(value)


class SampleRun(models.Model):
    """A library's sample for one month has been drawn: a second run skips it (review.sampling)."""

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="+", verbose_name=_("consortium"))
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="+", verbose_name=_("library"))
    month = models.DateField(help_text=_("the first day of the month the chats arrived in"), verbose_name=_("month"))
    ran_at = models.DateTimeField(verbose_name=_("ran at"))
    answered = models.PositiveIntegerField(verbose_name=_("answered"))
    sampled = models.PositiveIntegerField(verbose_name=_("sampled"))

    class Meta:
        verbose_name = _("sample run")
        verbose_name_plural = _("sample runs")
        constraints = [models.UniqueConstraint(fields=["library", "month"], name="review_sample_once")]


class Review(models.Model):
    """One sampled chat, assigned to a reviewer of another library; submitted once scored."""

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="reviews",
                                   verbose_name=_("consortium"))
    chat = models.OneToOneField(Chat, on_delete=models.CASCADE, related_name="review", verbose_name=_("chat"))
    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="reviews",
                                help_text=_("the answering library (the answering librarian's)"),
                                verbose_name=_("library"))
    librarian = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="reviews_received",
                                  verbose_name=_("librarian"))
    reviewer = models.ForeignKey(StaffProfile, on_delete=models.PROTECT, related_name="reviews_assigned",
                                 verbose_name=_("reviewer"))
    month = models.DateField(help_text=_("the first day of the month the chat arrived in"), verbose_name=_("month"))
    assigned_at = models.DateTimeField(verbose_name=_("assigned at"))
    due_at = models.DateTimeField(verbose_name=_("due at"))
    submitted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("submitted at"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))
    notable = models.BooleanField(default=False, verbose_name=_("notable"))
    notable_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("notable by"))
    notable_at = models.DateTimeField(null=True, blank=True, verbose_name=_("notable at"))

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["consortium", "month"]), models.Index(fields=["reviewer", "submitted_at"])]

    @property
    def submitted(self) -> bool:
        return self.submitted_at is not None

    @property
    def due_on(self) -> date:
        """The last day to submit it, in the consortium's time zone (`due_at` is the midnight after it)."""
        return (self.due_at - timedelta(seconds=1)).astimezone(ZoneInfo(self.consortium.timezone)).date()


class Score(models.Model):
    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="scores", verbose_name=_("review"))
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="scores",
                                  verbose_name=_("criterion"))
    value = models.PositiveSmallIntegerField(verbose_name=_("value"))
    comment = models.TextField(blank=True, verbose_name=_("comment"))

    class Meta:
        verbose_name = _("score")
        verbose_name_plural = _("scores")
        ordering = ["review", "criterion__position", "criterion__pk"]
        constraints = [models.UniqueConstraint(fields=["review", "criterion"], name="review_score_once")]
