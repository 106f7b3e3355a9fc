"""Keeping canned responses: create, edit and delete one, in a set the profile may keep (routing.canned).

Every check is here, not in the page: the set comes from the request, the owner, library and
consortium from the profile, never from the form, so nobody can write into another library's or
another person's set. Bad input is refused with the fields at fault and nothing is changed.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext, gettext_lazy

from libraries.models import StaffProfile
from routing.canned import LIBRARY, PERSONAL, managed_by, set_of, sets_managed_by
from routing.models import CannedResponse
from routing.services.common import Refused

MAX_TITLE = 100
MAX_TEXT = 4000


def _too_long(most: int, has: int) -> str:
    return gettext("At most %(most)d characters (this one has %(has)d).") % {"most": most, "has": has}


def _checked(*, title: str, body_en: str, body_es: str) -> tuple[str, str, str]:
    title, body_en, body_es = (title or "").strip(), (body_en or "").strip(), (body_es or "").strip()
    errors: dict[str, list[str]] = {}
    if not title:
        errors["title"] = [gettext("Give the response a title: it is what you search for after /.")]
    elif len(title) > MAX_TITLE:
        errors["title"] = [_too_long(MAX_TITLE, len(title))]
    for field, text in (("body_en", body_en), ("body_es", body_es)):
        if len(text) > MAX_TEXT:
            errors[field] = [_too_long(MAX_TEXT, len(text))]
    if not body_en and not body_es:
        errors["body_en"] = [gettext("Write the response in English, in Spanish or in both.")]
    if errors:
        raise Refused("invalid", gettext_lazy("the response was not saved"), errors)
    return title, body_en, body_es


def canned_create(profile: StaffProfile, *, which: str, title: str, body_en: str, body_es: str) -> CannedResponse:
    if which not in sets_managed_by(profile):
        raise Refused("forbidden", gettext_lazy("you may not keep responses in that set"),
                      {"set": [gettext_lazy("Not a set you keep.")]})
    title, body_en, body_es = _checked(title=title, body_en=body_en, body_es=body_es)
    return CannedResponse.objects.create(
        consortium_id=profile.library.consortium_id,
        owner=profile if which == PERSONAL else None,
        library_id=profile.library_id if which == LIBRARY else None,
        title=title, body=body_en, body_es=body_es)


def canned_update(profile: StaffProfile, response_id: int, *, title: str, body_en: str,
                  body_es: str) -> CannedResponse:
    """Change the title and texts; a response stays in its set (delete and create to move it)."""
    title, body_en, body_es = _checked(title=title, body_en=body_en, body_es=body_es)
    with transaction.atomic():
        response = managed_by(profile).select_for_update().filter(pk=response_id).first()
        if response is None:
            raise Refused("not_found", gettext_lazy("no such response"))
        response.title, response.body, response.body_es = title, body_en, body_es
        response.save(update_fields=["title", "body", "body_es"])
    return response


def canned_delete(profile: StaffProfile, response_id: int) -> str:
    """Delete the response; answers the set it was in."""
    response = managed_by(profile).filter(pk=response_id).first()
    if response is None:
        raise Refused("not_found", gettext_lazy("no such response"))
    which = set_of(response)
    response.delete()
    return which

