"""The tenant: a consortium of member libraries sharing one virtual-reference service."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

SLUG_VALIDATOR = RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "use lowercase letters, digits and hyphens")

COLOR_VALIDATOR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "use a colour like #1d4ed8")
DEFAULT_COLORS = {"accent": "#1d4ed8", "accent_text": "#ffffff"}

# Texting (docs/sms.md): numbers in E.164 (a +, the country code, at most 15 digits) and keywords.
E164_RE = r"^\+[1-9]\d{6,14}$"
E164_VALIDATOR = RegexValidator(E164_RE, "use E.164: a +, the country code and the number, digits only "
                                         "(+18505551234)")
SMS_KEYWORD_RE = r"^[A-Za-z0-9]{2,20}$"
SMS_KEYWORD_VALIDATOR = RegexValidator(SMS_KEYWORD_RE, "use 2-20 letters or digits")

# The defaults of docs/consortium-file.md, in one place for the model, the importer and the docs.
SETTING_DEFAULTS: dict[str, int] = {
    "local_timeout": 45,
    "partner_timeout": 60,
    "offer_timeout": 20,
    "max_wait": 600,
    "reconnect_grace": 30,
    "patron_grace": 60,
    "idle_timeout": 1200,
    "librarian_capacity": 3,
    "transcript_retention_days": 90,
    # The console's automatic away at the end of a librarian's shift (libraries/duty.py): the warning
    # comes this many seconds before, and "I'm staying on" (or being available off duty) lasts this long.
    "shift_warning": 300,
    "shift_extension": 1800,
    # Texting (docs/sms.md): an SMS chat has no socket to lose; it ends after this many seconds
    # without a text from either side.
    "sms_idle": 1800,
    # Follow-ups (docs/coordinators.md, "Follow-ups with deadlines"): answered within this many hours
    # unless the library or the patron says otherwise; the library's follow-up list is reminded this
    # many hours before; past due, the partner libraries have this many hours before it goes on to
    # the consortium's list.
    "followup_due_hours": 72,
    "followup_reminder_hours": 24,
    "followup_partner_hours": 24,
    # Returning patrons (docs/routing.md, "Head start"): seconds the librarian who last helped a
    # patron who asked to be remembered is offered their new chat alone, when present.
    "returning_head_start": 30,
}


class Consortium(models.Model):
    slug = models.CharField(max_length=50, unique=True, validators=[SLUG_VALIDATOR], verbose_name=_("slug"))
    name = models.CharField(max_length=200, verbose_name=_("name"))
    timezone = models.CharField(max_length=64, default="America/New_York", verbose_name=_("timezone"))
    allowed_origins = models.JSONField(default=list, blank=True, verbose_name=_("allowed origins"))
    local_timeout = models.PositiveIntegerField(default=SETTING_DEFAULTS["local_timeout"],
                                                verbose_name=_("local timeout"))
    partner_timeout = models.PositiveIntegerField(default=SETTING_DEFAULTS["partner_timeout"],
                                                  verbose_name=_("partner timeout"))
    offer_timeout = models.PositiveIntegerField(default=SETTING_DEFAULTS["offer_timeout"],
                                                verbose_name=_("offer timeout"))
    max_wait = models.PositiveIntegerField(default=SETTING_DEFAULTS["max_wait"], verbose_name=_("max wait"))
    reconnect_grace = models.PositiveIntegerField(default=SETTING_DEFAULTS["reconnect_grace"],
                                                  verbose_name=_("reconnect grace"))
    patron_grace = models.PositiveIntegerField(default=SETTING_DEFAULTS["patron_grace"], verbose_name=_("patron grace"))
    idle_timeout = models.PositiveIntegerField(default=SETTING_DEFAULTS["idle_timeout"], verbose_name=_("idle timeout"))
    librarian_capacity = models.PositiveIntegerField(default=SETTING_DEFAULTS["librarian_capacity"],
                                                     verbose_name=_("librarian capacity"))
    transcript_retention_days = models.PositiveIntegerField(default=SETTING_DEFAULTS["transcript_retention_days"],
                                                            verbose_name=_("transcript retention days"))
    shift_warning = models.PositiveIntegerField(default=SETTING_DEFAULTS["shift_warning"],
                                                verbose_name=_("shift warning"))
    shift_extension = models.PositiveIntegerField(default=SETTING_DEFAULTS["shift_extension"],
                                                  verbose_name=_("shift extension"))
    sms_idle = models.PositiveIntegerField(default=SETTING_DEFAULTS["sms_idle"], verbose_name=_("sms idle"))
    followup_due_hours = models.PositiveIntegerField(default=SETTING_DEFAULTS["followup_due_hours"],
                                                     verbose_name=_("followup due hours"))
    followup_reminder_hours = models.PositiveIntegerField(default=SETTING_DEFAULTS["followup_reminder_hours"],
                                                          verbose_name=_("followup reminder hours"))
    followup_partner_hours = models.PositiveIntegerField(default=SETTING_DEFAULTS["followup_partner_hours"],
                                                         verbose_name=_("followup partner hours"))
    returning_head_start = models.PositiveIntegerField(default=SETTING_DEFAULTS["returning_head_start"],
                                                       verbose_name=_("returning head start"))
    # Texting (docs/sms.md): the consortium's own number (E.164; texts to it have no home library
    # unless they start with a library's keyword) and the answer to HELP (empty: a default).
    sms_number = models.CharField(max_length=16, null=True, blank=True, unique=True, validators=[E164_VALIDATOR],
                                  verbose_name=_("sms number"))
    sms_help = models.CharField(max_length=320, blank=True, verbose_name=_("sms help"))
    # The staff console warns beside a chat when the home library's policy page was last reviewed
    # longer ago than this (stale policy pages mislead partner librarians).
    policy_review_limit_days = models.PositiveIntegerField(default=365, verbose_name=_("policy review limit days"))
    # The consortium's colours on its ask pages (and the widget's defaults): #rrggbb.
    accent_color = models.CharField(max_length=7, default=DEFAULT_COLORS["accent"], validators=[COLOR_VALIDATOR],
                                    verbose_name=_("accent color"))
    accent_text_color = models.CharField(max_length=7, default=DEFAULT_COLORS["accent_text"],
                                         validators=[COLOR_VALIDATOR], verbose_name=_("accent text color"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        verbose_name = _("consortium")
        verbose_name_plural = _("consortia")
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.sms_number == "":
            self.sms_number = None  # blank in a form: no number (the column is unique, NULLs are not)
        if self.sms_number:
            from libraries.models import Library

            if Library.objects.filter(sms_number=self.sms_number).exists():
                raise ValidationError({"sms_number": "this number is already a library's"})

    def setting(self, name: str) -> int:
        value: int = getattr(self, name)
        return value


# The alerts to coordinators (alerts/, docs/coordinators.md "Alerts"): the defaults, in one place for
# the model, the consortium file and the docs.
ALERT_DEFAULTS: dict[str, int | bool] = {
    "mail": True,  # mail the consortium's coordinators (the board shows alerts either way)
    "queue_unstaffed_minutes": 10,  # a queue open by its hours with nobody available this long
    "unstaffed_percent": 25,  # of the last hour's chats ending unstaffed ...
    "unstaffed_min_chats": 3,  # ... and at least this many of them (one in one is no trend)
    "shift_absent_minutes": 10,  # a rota shift's librarian not signed in this long after its start
    "followup_overdue_hours": 48,  # a follow-up still open this long after it was left
}


class AlertSettings(models.Model):
    """When a consortium's coordinators are alerted (the defaults, ALERT_DEFAULTS, until a row exists).

    Kept in this app, the lowest, so that the consortium file (libraries) can write it without
    importing the alerts app above it."""

    consortium = models.OneToOneField(Consortium, on_delete=models.CASCADE, related_name="alert_settings",
                                      verbose_name=_("consortium"))
    mail = models.BooleanField(default=ALERT_DEFAULTS["mail"], verbose_name=_("mail"))
    queue_unstaffed_minutes = models.PositiveIntegerField(default=ALERT_DEFAULTS["queue_unstaffed_minutes"],
                                                          verbose_name=_("queue unstaffed minutes"))
    unstaffed_percent = models.PositiveSmallIntegerField(default=ALERT_DEFAULTS["unstaffed_percent"],
                                                         verbose_name=_("unstaffed percent"))
    unstaffed_min_chats = models.PositiveIntegerField(default=ALERT_DEFAULTS["unstaffed_min_chats"],
                                                      verbose_name=_("unstaffed min chats"))
    shift_absent_minutes = models.PositiveIntegerField(default=ALERT_DEFAULTS["shift_absent_minutes"],
                                                       verbose_name=_("shift absent minutes"))
    followup_overdue_hours = models.PositiveIntegerField(default=ALERT_DEFAULTS["followup_overdue_hours"],
                                                         verbose_name=_("followup overdue hours"))

    class Meta:
        verbose_name = _("alert settings")
        verbose_name_plural = _("alert settings")

    def clean(self) -> None:
        super().clean()
        if self.unstaffed_percent > 100:
            raise ValidationError({"unstaffed_percent": "a percentage is 0 to 100"})


def alert_settings_of(consortium: Consortium) -> AlertSettings:
    """The consortium's alert settings (the defaults until some are saved)."""
    found = AlertSettings.objects.filter(consortium=consortium).first()
    return found or AlertSettings(consortium=consortium)
