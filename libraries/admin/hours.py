"""Hours in the admin: weekly intervals, closures and special hours, as inlines and on their own."""

from __future__ import annotations

import itertools
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consortium.scoping import ALL_ACTIONS, ScopedModelAdmin, ScopedTabularInline
from libraries.admin.common import WEEKDAYS
from libraries.hours import format_interval, parse_interval
from libraries.models import Closure, SpecialHours, WeeklyInterval

# Minutes since midnight are what the router stores; people read and type "09:00-17:00".


class WeeklyIntervalForm(forms.ModelForm):
    weekday = forms.TypedChoiceField(choices=[("", "---------"), *WEEKDAYS], coerce=int)
    hours = forms.CharField(max_length=11, label=gettext_lazy("hours"),
                            help_text=gettext_lazy("HH:MM-HH:MM in the queue's time zone; end may be 24:00"))

    class Meta:
        model = WeeklyInterval
        fields = ("queue", "weekday")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["hours"] = format_interval(self.instance.start_minute, self.instance.end_minute)

    def clean_hours(self) -> str:
        text: str = self.cleaned_data["hours"]
        try:
            self.instance.start_minute, self.instance.end_minute = parse_interval(text)
        except ValueError as e:
            raise ValidationError(str(e)) from None
        return text


class SpecialHoursForm(forms.ModelForm):
    hours = forms.CharField(required=False, max_length=200, label=gettext_lazy("hours"),
                            help_text=gettext_lazy('"09:00-12:00, 13:00-17:00"; leave empty to close all day'))

    class Meta:
        model = SpecialHours
        fields = ("queue", "date", "reason")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["hours"] = ", ".join(format_interval(s, e) for s, e in self.instance.intervals or [])

    def clean_hours(self) -> str:
        text: str = self.cleaned_data["hours"]
        try:
            intervals = sorted(parse_interval(part) for part in text.split(",") if part.strip())
        except ValueError as e:
            raise ValidationError(str(e)) from None
        for (_start, end), (start, _end) in itertools.pairwise(intervals):
            if start < end:
                raise ValidationError(_("intervals overlap"))
        self.instance.intervals = [list(i) for i in intervals]
        return text


class ClosureForm(forms.ModelForm):
    class Meta:
        model = Closure
        fields = ("queue", "start_date", "end_date", "reason")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            raise ValidationError(_("the closure ends before it starts"))
        return data


class WeeklyIntervalInline(ScopedTabularInline):
    model = WeeklyInterval
    form = WeeklyIntervalForm
    fields = ("weekday", "hours")
    verbose_name_plural = "weekly hours"


class ClosureInline(ScopedTabularInline):
    model = Closure
    form = ClosureForm
    fields = ("start_date", "end_date", "reason")


class SpecialHoursInline(ScopedTabularInline):
    model = SpecialHours
    form = SpecialHoursForm
    fields = ("date", "hours", "reason")


class _HoursRowAdmin(ScopedModelAdmin):
    """The hour rows on their own, for a consortium-wide look (say, every closure this month)."""

    path_to_consortium = "queue__consortium"
    path_to_library = "queue__library"
    coordinator_actions = ALL_ACTIONS
    library_admin_actions = ALL_ACTIONS
    list_select_related = ("queue",)
    search_fields = ("queue__slug", "queue__name")
    list_filter = (("queue", admin.RelatedOnlyFieldListFilter),)


@admin.register(WeeklyInterval)
class WeeklyIntervalAdmin(_HoursRowAdmin):
    form = WeeklyIntervalForm
    fields = ("queue", "weekday", "hours")
    list_display = ("queue", "day", "hours")

    @admin.display(ordering="weekday")
    def day(self, obj: WeeklyInterval) -> str:
        return dict(WEEKDAYS).get(obj.weekday, str(obj.weekday))

    @admin.display(ordering="start_minute")
    def hours(self, obj: WeeklyInterval) -> str:
        return format_interval(obj.start_minute, obj.end_minute)


@admin.register(Closure)
class ClosureAdmin(_HoursRowAdmin):
    form = ClosureForm
    list_display = ("queue", "start_date", "end_date", "reason")
    date_hierarchy = "start_date"


@admin.register(SpecialHours)
class SpecialHoursAdmin(_HoursRowAdmin):
    form = SpecialHoursForm
    fields = ("queue", "date", "hours", "reason")
    list_display = ("queue", "date", "hours", "reason")
    date_hierarchy = "date"

    @admin.display(description=gettext_lazy("hours"))
    def hours(self, obj: SpecialHours) -> str:
        return ", ".join(format_interval(s, e) for s, e in obj.intervals or []) or "closed"

