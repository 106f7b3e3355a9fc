"""The live board script's words, in the coordinator's language: gettext strings handed to board.js as one
JSON object in the page (as the patron's script gets SCRIPT_STRINGS), so the script needs no catalogue.
Placeholders in braces are filled by the script; keep them when translating."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

BOARD_STRINGS = {
    "absent": _("{librarian} ({library}) is on the {queue} shift but not present for {minutes} min"),
    "understaffed": _("{queue} shift: {present} of at least {min} librarians present"),
    "nobody_waiting": _("Nobody is waiting."),
    "no_home": _("no home library"),
    "no_chat": _("No chat in progress."),
    "partner": _("(partner)"),
    "rota": _("rota"),
    "open": _("open"),
    "closed": _("closed"),
    "no_queues": _("No queues."),
    "no_shift": _("No rota shift is going on."),
    "until": _("{queue} until {time}"),
    "present_of": _("{present} of {min} present"),
    "nobody_present": _("Nobody is present."),
    "load": _("{name} · {active}/{capacity} chats · {queues}"),
    "live": _("live"),
    "reconnecting": _("reconnecting"),
    "signed_out": _("signed out"),
}


def board_strings() -> dict[str, str]:
    """BOARD_STRINGS in the active language."""
    return {key: str(value) for key, value in BOARD_STRINGS.items()}
