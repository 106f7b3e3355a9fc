"""Forms of the coordinator pages: what people type ("09:00-12:00, 13:00-17:00") to what the services take."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from libraries.consortium_file.fields import is_timezone
from libraries.hours import parse_interval

WEEKDAY_CHOICES = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"),
                   (5, "Saturday"), (6, "Sunday")]
MAX_ICS_BYTES = 512 * 1024


def parse_intervals(text: str) -> list[tuple[int, int]]:
    """'09:00-12:00, 13:00-17:00' -> [(540, 720), (780, 1020)]; '' or 'closed' -> []."""
    text = (text or "").strip()
    if not text or text.lower() == "closed":
        return []
    return [parse_interval(part) for part in text.replace(";", ",").split(",") if part.strip()]


class IntervalsField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 200)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> list[tuple[int, int]]:
        text = super().clean(value)
        try:
            return parse_intervals(text)
        except ValueError as e:
            raise forms.ValidationError(str(e)) from e


class WeeklyHoursForm(forms.Form):
    timezone = forms.CharField(max_length=64)
    always_open = forms.BooleanField(required=False, label=_("Open around the clock"))
    mon = IntervalsField(label=pgettext_lazy("weekday heading", "Monday"))
    tue = IntervalsField(label=pgettext_lazy("weekday heading", "Tuesday"))
    wed = IntervalsField(label=pgettext_lazy("weekday heading", "Wednesday"))
    thu = IntervalsField(label=pgettext_lazy("weekday heading", "Thursday"))
    fri = IntervalsField(label=pgettext_lazy("weekday heading", "Friday"))
    sat = IntervalsField(label=pgettext_lazy("weekday heading", "Saturday"))
    sun = IntervalsField(label=pgettext_lazy("weekday heading", "Sunday"))

    DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

    def clean_timezone(self) -> str:
        value: str = self.cleaned_data["timezone"].strip()
        if not is_timezone(value):
            raise forms.ValidationError(f'"{value}" is not an IANA time zone name (like America/New_York)')
        return value

    def weekly(self) -> dict[int, list[tuple[int, int]]]:
        return {i: self.cleaned_data[day] for i, day in enumerate(self.DAYS) if self.cleaned_data[day]}


class ClosureForm(forms.Form):
    start = forms.DateField(label=_("From"))
    end = forms.DateField(label=_("To (included)"), required=False)
    reason = forms.CharField(max_length=200, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") and not data.get("end"):
            data["end"] = data["start"]
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError(_("a closure ends on or after the day it starts"))
        return data


class SpecialHoursForm(forms.Form):
    date = forms.DateField()
    hours = IntervalsField(help_text=_("empty or \"closed\" for closed all day"))
    reason = forms.CharField(max_length=200, required=False)


class IcsImportForm(forms.Form):
    file = forms.FileField(label=_("iCalendar file (.ics)"))

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_ICS_BYTES:
            raise forms.ValidationError(f"the file is larger than {MAX_ICS_BYTES // 1024} KiB")
        raw = upload.read()
        try:
            return str(raw.decode("utf-8-sig"))
        except UnicodeDecodeError:
            return str(raw.decode("latin-1"))


class ShiftForm(forms.Form):
    weekday = forms.TypedChoiceField(choices=WEEKDAY_CHOICES, coerce=int)
    hours = forms.CharField(max_length=11, help_text=_("HH:MM-HH:MM in the queue's time zone"))
    min_librarians = forms.IntegerField(min_value=1, max_value=50, initial=1, label=_("At least"))

    def clean_hours(self) -> tuple[int, int]:
        try:
            return parse_interval(self.cleaned_data["hours"])
        except ValueError as e:
            raise forms.ValidationError(str(e)) from e


class PeriodForm(forms.Form):
    since = forms.DateField(required=False)
    until = forms.DateField(required=False)
    library = forms.CharField(required=False, max_length=50)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            raise forms.ValidationError(_("the period ends before it starts"))
        if since and until and (until - since) > dt.timedelta(days=3 * 366):
            raise forms.ValidationError(_("choose a period of at most three years"))
        return data
