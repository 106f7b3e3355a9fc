"""An alert in words, in the language active when it is read (the board's reader, each mail's recipient).

The rows keep figures (alerts.models.Alert.detail), never sentences, so that the same alert reads in
English to one coordinator and in Spanish to another.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from alerts.models import Alert


def alert_text(kind: str, detail: dict[str, Any]) -> str:
    if kind == Alert.Kind.QUEUE_UNSTAFFED:
        return _("%(queue)s is open with nobody available to take its chats.") % detail
    if kind == Alert.Kind.UNSTAFFED_RATE:
        return _("%(unstaffed)s of the %(total)s chats that ended in the last hour (%(percent)s%%) ended "
                 "unstaffed: nobody could take them.") % detail
    if kind == Alert.Kind.SHIFT_ABSENT:
        return _("%(librarian)s (%(library)s) has not signed in for the %(queue)s shift that started at "
                 "%(start)s.") % detail
    if kind == Alert.Kind.POLICY_STALE:
        if detail.get("reviewed_on"):
            return _("The policy page of %(library)s is past its review date (last reviewed %(reviewed_on)s).") % detail
        return _("The policy page of %(library)s has never been reviewed.") % detail
    if kind == Alert.Kind.FOLLOWUPS_OVERDUE:
        return ngettext("%(count)s follow-up has been open longer than %(hours)s hours.",
                        "%(count)s follow-ups have been open longer than %(hours)s hours.", detail["count"]) % detail
    return str(kind)


def fix_label(kind: str) -> str:
    """The words of the alert's link: what the coordinator will do on the page it opens."""
    labels: dict[str, str] = {
        Alert.Kind.QUEUE_UNSTAFFED: _("Staff the queue or change its hours"),
        Alert.Kind.UNSTAFFED_RATE: _("See coverage"),
        Alert.Kind.SHIFT_ABSENT: _("Find cover on the rota"),
        Alert.Kind.POLICY_STALE: _("Review the policy page"),
        Alert.Kind.FOLLOWUPS_OVERDUE: _("Open the follow-ups"),
    }
    return labels.get(kind, _("Open"))
