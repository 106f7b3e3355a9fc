"""What the admin modules of libraries share."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Field, Model
from django.utils.translation import gettext as _

WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"),
            (5, "Saturday"), (6, "Sunday")]


def readonly_except(model: type[Model], editable: tuple[str, ...], *extra: str) -> tuple[str, ...]:
    """Every field of `model` but `editable`, for a role that may change only a few of them."""
    names = [f.name for f in model._meta.get_fields()
             if isinstance(f, Field) and f.concrete and not f.auto_created and f.name not in editable]
    many = [f.name for f in model._meta.many_to_many if f.name not in editable]
    return (*names, *many, *extra)


def string_list(value: Any, what: str, example: str) -> list[str]:
    """`value` if it is a list of strings; else refused, naming `what` (translated) and an `example`."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(_('a list of %(what)s, like ["%(example)s"]') % {"what": what, "example": example})
    return value

