"""Member libraries, their queues and hours, and the staff who answer for them."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from consortium.models import E164_VALIDATOR, SLUG_VALIDATOR, SMS_KEYWORD_VALIDATOR, Consortium
from libraries.hours import format_interval


class OfferMode(models.TextChoices):
    BROADCAST = "broadcast", pgettext_lazy("how a queue offers its chats", "To everyone at once")
    DIRECT = "direct", pgettext_lazy("how a queue offers its chats", "To one librarian at a time")


class Queue(models.Model):
    """Where chats wait. Each library has one local queue; a consortium has shared queues."""

    class Kind(models.TextChoices):
        LOCAL = "local", pgettext_lazy("a queue's kind", "A library's own")
        SHARED = "shared", pgettext_lazy("a queue's kind", "Shared")

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="queues",
                                   verbose_name=_("consortium"))
    slug = models.CharField(max_length=50, validators=[SLUG_VALIDATOR], verbose_name=_("slug"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    kind = models.CharField(max_length=10, choices=Kind.choices, verbose_name=_("kind"))
    library = models.OneToOneField(
        "Library", null=True, blank=True, on_delete=models.CASCADE, related_name="local_queue",
        verbose_name=_("library")
    )
    mode = models.CharField(max_length=10, choices=OfferMode.choices, default=OfferMode.BROADCAST,
                            verbose_name=_("mode"))
    timezone = models.CharField(max_length=64, verbose_name=_("timezone"))
    always_open = models.BooleanField(default=False, verbose_name=_("always open"))
    languages = models.JSONField(default=list, blank=True, verbose_name=_("languages"))
    # Only librarians on a rota shift for this queue are offered its chats (see the rota).
    rota_driven = models.BooleanField(default=False, verbose_name=_("rota driven"))
    position = models.PositiveIntegerField(default=0, help_text=_("order of the consortium's shared queues"),
                                           verbose_name=_("position"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["consortium", "kind", "position", "slug"]
        constraints = [models.UniqueConstraint(fields=["consortium", "slug"], name="queue_slug_per_consortium")]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"


class Library(models.Model):
    class Kind(models.TextChoices):
        PUBLIC = "public", pgettext_lazy("a library's kind", "Public")
        ACADEMIC = "academic", pgettext_lazy("a library's kind", "Academic")
        SCHOOL = "school", pgettext_lazy("a library's kind", "School")
        SPECIAL = "special", pgettext_lazy("a library's kind", "Special")
        LAW = "law", pgettext_lazy("a library's kind", "Law")

    consortium = models.ForeignKey(Consortium, on_delete=models.CASCADE, related_name="libraries",
                                   verbose_name=_("consortium"))
    slug = models.CharField(max_length=50, validators=[SLUG_VALIDATOR], verbose_name=_("slug"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PUBLIC, verbose_name=_("kind"))
    timezone = models.CharField(max_length=64, verbose_name=_("timezone"))
    city = models.CharField(max_length=100, blank=True, verbose_name=_("city"))
    zip_codes = models.JSONField(default=list, blank=True, verbose_name=_("zip codes"))
    # The queue of the route's last step, the one docs/routing.md calls "consortium" (the consortium
    # file's key `fallback`, kept by that contract).
    consortium_queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="consortium_queue_for",
        help_text=_("the consortium step's queue; default the consortium's first shared queue"),
        verbose_name=_("consortium queue"),
    )
    local_timeout = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("local timeout"))
    partner_timeout = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("partner timeout"))
    # A custom route plan: [{"name": str, "queues": [queue slug], "wait": int | None}], or null.
    route = models.JSONField(null=True, blank=True, verbose_name=_("route"))
    policy = models.TextField(blank=True, help_text=_("Markdown shown to librarians answering this library's patrons"),
                              verbose_name=_("policy"))
    policy_reviewed_on = models.DateField(null=True, blank=True, verbose_name=_("policy reviewed on"))
    website = models.URLField(blank=True, verbose_name=_("website"))
    key_links = models.JSONField(default=list, blank=True, verbose_name=_("key links"))
    # The hours a week of shared-queue shifts the library has promised the consortium's rota.
    rota_target_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text=_("weekly hours of rota shifts the library commits to"),
        verbose_name=_("rota target hours"))
    # Some libraries (a law library, a school) must keep transcripts for less time than the consortium.
    transcript_retention_days = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("days before its patrons' chats are scrubbed; default the consortium's"),
        verbose_name=_("transcript retention days"))
    # Follow-ups of this library's patrons are due this many hours after they are left (default: the
    # consortium's followup_due_hours); a patron's own deadline wins over both.
    followup_due_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("hours to answer a follow-up; default the consortium's"),
        verbose_name=_("followup due hours"))
    # Texting (docs/sms.md): the library's own number (E.164), and the keyword that makes a text to
    # the consortium's number this library's.
    sms_number = models.CharField(max_length=16, null=True, blank=True, unique=True, validators=[E164_VALIDATOR],
                                  verbose_name=_("sms number"))
    sms_keyword = models.CharField(max_length=20, blank=True, validators=[SMS_KEYWORD_VALIDATOR],
                                   verbose_name=_("sms keyword"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        verbose_name = _("library")
        verbose_name_plural = _("libraries")
        ordering = ["consortium", "name"]
        constraints = [models.UniqueConstraint(fields=["consortium", "slug"], name="library_slug_per_consortium")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.sms_number == "":
            self.sms_number = None  # blank in a form: no number (the column is unique, NULLs are not)
        if self.sms_number and Consortium.objects.filter(sms_number=self.sms_number).exists():
            raise ValidationError({"sms_number": "this number is already a consortium's"})
        if self.sms_keyword and self.consortium_id and (
                Library.objects.filter(consortium_id=self.consortium_id, sms_keyword__iexact=self.sms_keyword)
                .exclude(pk=self.pk).exists()):
            raise ValidationError({"sms_keyword": "another library of this consortium has this keyword"})

    def partner_libraries(self) -> list[Library]:
        return [p.partner for p in self.partner_links.select_related("partner").order_by("position")]


class LibraryPartner(models.Model):
    """One entry of a library's ordered partner list (the partners step)."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="partner_links",
                                verbose_name=_("library"))
    partner = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="partner_of", verbose_name=_("partner"))
    position = models.PositiveIntegerField(verbose_name=_("position"))

    class Meta:
        verbose_name = _("library partner")
        verbose_name_plural = _("library partners")
        ordering = ["library", "position"]
        constraints = [models.UniqueConstraint(fields=["library", "partner"], name="partner_once")]


class WeeklyInterval(models.Model):
    """Open from start to end minute (0..1440) of a weekday (0 = Monday), in the queue's time zone."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="weekly", verbose_name=_("queue"))
    weekday = models.PositiveSmallIntegerField(verbose_name=_("weekday"))
    start_minute = models.PositiveSmallIntegerField(verbose_name=_("start minute"))
    end_minute = models.PositiveSmallIntegerField(verbose_name=_("end minute"))

    class Meta:
        verbose_name = _("weekly interval")
        verbose_name_plural = _("weekly intervals")
        ordering = ["queue", "weekday", "start_minute"]


class Closure(models.Model):
    """Closed all day from start_date to end_date inclusive (local dates of the queue)."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="closures", verbose_name=_("queue"))
    start_date = models.DateField(verbose_name=_("start date"))
    end_date = models.DateField(verbose_name=_("end date"))
    reason = models.CharField(max_length=200, blank=True, verbose_name=_("reason"))

    class Meta:
        verbose_name = _("closure")
        verbose_name_plural = _("closures")
        ordering = ["queue", "start_date"]


class SpecialHours(models.Model):
    """Hours that replace the weekly hours on one date: [[start_minute, end_minute], ...]."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="special_hours", verbose_name=_("queue"))
    date = models.DateField(verbose_name=_("date"))
    intervals = models.JSONField(default=list, verbose_name=_("intervals"))
    reason = models.CharField(max_length=200, blank=True, verbose_name=_("reason"))

    class Meta:
        verbose_name = _("special hours")
        verbose_name_plural = _("special hours")
        ordering = ["queue", "date"]
        constraints = [models.UniqueConstraint(fields=["queue", "date"], name="special_hours_once_a_day")]


class StaffProfile(models.Model):
    class Role(models.TextChoices):
        LIBRARIAN = "librarian", pgettext_lazy("a staff member's role", "Librarian")
        LIBRARY_ADMIN = "library_admin", pgettext_lazy("a staff member's role", "Library admin")
        COORDINATOR = "coordinator", pgettext_lazy("a staff member's role", "Coordinator")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff",
                                verbose_name=_("user"))
    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="staff", verbose_name=_("library"))
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.LIBRARIAN, verbose_name=_("role"))
    queues = models.ManyToManyField(Queue, blank=True, related_name="shared_staff",
                                    help_text=_("shared queues served besides the library's own"),
                                    verbose_name=_("queues"))
    capacity = models.PositiveSmallIntegerField(null=True, blank=True,
                                                help_text=_("most concurrent chats; default the consortium's"),
                                                verbose_name=_("capacity"))
    languages = models.JSONField(default=list, blank=True, verbose_name=_("languages"))
    # The language of the console, the coordinator pages and the mail this person gets (en, es);
    # blank: their browser's.
    language = models.CharField(max_length=8, blank=True, choices=settings.LANGUAGES, verbose_name=_("language"))
    # The SHA-256 of the secret in the address of this librarian's iCalendar feed of shifts
    # (libraries.rota, consortium.tokens): the address is shown once, when made, and never stored.
    feed_token_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False,
                                       verbose_name=_("feed token hash"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    # Set by coordinators: sees every live chat of the consortium and may watch, whisper, join and take
    # over (routing.mentoring). Coordinators are mentors whatever this says.
    is_mentor = models.BooleanField(default=False, db_default=False, verbose_name=_("mentor"))

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")
        ordering = ["library", "user__username"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.library.slug})"

    @property
    def consortium(self) -> Consortium:
        return self.library.consortium

    @property
    def display_name(self) -> str:
        full = self.user.get_full_name()
        return full or self.user.get_username()

    @property
    def effective_capacity(self) -> int:
        if self.capacity is not None:
            return self.capacity
        return self.library.consortium.librarian_capacity


# --- the rota ----------------------------------------------------------------------------------------
# Shared queues are staffed by volunteers from member libraries. A shift recurs weekly in the queue's
# own time zone; librarians are assigned to it; one occurrence (a date) can be handed to a colleague
# through a swap. On a rota-driven queue only the librarians on shift now are offered its chats.


class Shift(models.Model):
    """Every week on `weekday`, from start to end minute (0..1440) in the queue's time zone."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="shifts", verbose_name=_("queue"))
    weekday = models.PositiveSmallIntegerField(help_text=_("0 = Monday"), verbose_name=_("weekday"))
    start_minute = models.PositiveSmallIntegerField(verbose_name=_("start minute"))
    end_minute = models.PositiveSmallIntegerField(verbose_name=_("end minute"))
    min_librarians = models.PositiveSmallIntegerField(default=1, verbose_name=_("min librarians"))

    class Meta:
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        ordering = ["queue", "weekday", "start_minute"]
        constraints = [
            models.CheckConstraint(condition=models.Q(start_minute__lt=models.F("end_minute"), end_minute__lte=1440,
                                                      weekday__lte=6), name="shift_within_a_day"),
        ]

    def __str__(self) -> str:
        day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[self.weekday]
        return f"{self.queue.slug} {day} {format_interval(self.start_minute, self.end_minute)}"

    @property
    def hours(self) -> float:
        return (self.end_minute - self.start_minute) / 60


class ShiftAssignment(models.Model):
    """A librarian (of any member library) who works this shift every week."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="assignments", verbose_name=_("shift"))
    librarian = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="shift_assignments",
                                  verbose_name=_("librarian"))
    # The calendar feed starts the weekly series here, so a new assignment does not fill the past.
    assigned_on = models.DateField(verbose_name=_("assigned on"))

    class Meta:
        verbose_name = _("shift assignment")
        verbose_name_plural = _("shift assignments")
        ordering = ["shift", "librarian"]
        constraints = [models.UniqueConstraint(fields=["shift", "librarian"], name="assigned_once_per_shift")]


class ShiftSwap(models.Model):
    """One occurrence of a shift, offered by its assigned librarian and taken (or not yet) by another.

    Until someone takes it, the librarian who offered it is still on shift that day.
    """

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("a shift swap's status", "Offered")
        TAKEN = "taken", pgettext_lazy("a shift swap's status", "Taken")
        WITHDRAWN = "withdrawn", pgettext_lazy("a shift swap's status", "Withdrawn")

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="swaps", verbose_name=_("shift"))
    date = models.DateField(help_text=_("the local date of the occurrence, in the queue's time zone"),
                            verbose_name=_("date"))
    offered_by = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="swaps_offered",
                                   verbose_name=_("offered by"))
    taken_by = models.ForeignKey(StaffProfile, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="swaps_taken", verbose_name=_("taken by"))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN, verbose_name=_("status"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    created_at = models.DateTimeField(verbose_name=_("created at"))
    taken_at = models.DateTimeField(null=True, blank=True, verbose_name=_("taken at"))

    class Meta:
        verbose_name = _("shift swap")
        verbose_name_plural = _("shift swaps")
        ordering = ["date", "shift"]
        constraints = [
            models.UniqueConstraint(fields=["shift", "date", "offered_by"], condition=~models.Q(status="withdrawn"),
                                    name="one_live_swap_per_occurrence"),
        ]
        indexes = [models.Index(fields=["shift", "date", "status"])]
