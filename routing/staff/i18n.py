"""The staff console script's words, in the librarian's language (consortium/language.py): gettext strings
handed to the console's modules as one JSON object in the page, keyed by the English text
(routing/static/routing/staff/text.js `t`), so the script needs no catalogue and falls back to English.
Placeholders in braces are filled by the script; keep them when translating.

Every `t("...")` of the console's modules must be listed here (tests/test_catalogue.py checks it)."""

from __future__ import annotations

from django.utils.translation import gettext, gettext_noop

CONSOLE_STRINGS = (
    gettext_noop("Connecting…"),
    gettext_noop("Connected"),
    gettext_noop("Connection lost — retrying in {seconds} s"),
    gettext_noop("Reconnecting…"),
    gettext_noop("Offline — waiting for the network"),
    gettext_noop("Signed out"),
    gettext_noop("Not allowed"),
    gettext_noop("Your session ended. Sign in again to go on; your chats wait for you for a short while."),
    gettext_noop("The server refused this console (not a staff account, or an unknown address)."),
    gettext_noop("Available"),
    gettext_noop("Away"),
    gettext_noop("You are offered new chats. Click to go away."),
    gettext_noop("You are not offered new chats. Click when you are ready."),
    gettext_noop("You were set to Away because a chat offered to you expired. Click Away to become available again."),
    gettext_noop("You were set to Away at the end of your shift{at}. Chats you hold stay with you. "
                 "Click Away to become available again."),
    gettext_noop("Shift ends {time}"),
    gettext_noop("Your shift ends at {time}: you will be set to Away then, and chats you hold stay with you. "
                 "Covering overtime? Stay available a while longer."),
    gettext_noop("I'm staying on (1 more minute)"),
    gettext_noop("I'm staying on ({minutes} more minutes)"),
    gettext_noop("{active} of {capacity}"),
    gettext_noop("No home library"),
    gettext_noop("Transfer note: {note}"),
    gettext_noop("Text from {name}"),
    gettext_noop("Text from a phone"),
    gettext_noop("from {name}"),
    gettext_noop("Accept the chat from {name}"),
    gettext_noop("Accept the chat from the consortium"),
    gettext_noop("Decline this chat"),
    gettext_noop("A patron is waiting"),
    gettext_noop("Accepting…"),
    gettext_noop("Accept"),
    gettext_noop("Not connected: wait for the connection to come back, then accept."),
    gettext_noop("waiting {time}"),
    gettext_noop("accept within {time}"),
    gettext_noop("expiring…"),
    gettext_noop("was taken by another librarian"),
    gettext_noop("expired before it was accepted"),
    gettext_noop("was abandoned: the patron left"),
    gettext_noop("ended: the patron left"),
    gettext_noop("can no longer be answered here"),
    gettext_noop("The chat from {name} {what}."),
    gettext_noop("The chat {what}."),
    gettext_noop("Another librarian took this chat first."),
    gettext_noop("You already hold {capacity} chats: end one before accepting another."),
    gettext_noop("That chat is no longer offered to you."),
    gettext_noop("The patron left before the chat was accepted."),
    gettext_noop("The chat could not be accepted."),
    gettext_noop("The browser blocks notifications for this site; allow them in its site settings."),
)


def console_strings() -> dict[str, str]:
    """CONSOLE_STRINGS in the active language, keyed by their English text."""
    return {text: gettext(text) for text in CONSOLE_STRINGS}
