"""Who may do what with a chat: the one home of the access rules every entry point asks.

- `staff_of(user)`: the staff profile behind a signed-in user. A deactivated librarian (the user
  or the staff profile switched off) has none, and is refused by the HTTP API, the staff pages and
  their JSON API, the staff socket, file up- and downloads and the transcript alike.
- `may_read(profile, chat)`: a librarian reads a chat (its transcript, its files) when they took
  part in it, when its patron is their library's, or when they coordinate its consortium;
  `may_trace` is narrower (took part, or coordinator): the routing trace names other librarians.
- `is_mentor(profile)`, `may_watch(profile, chat)`, `may_mentor(profile, chat)`: the mentor live view
  (routing.services.mentoring). A mentor (the staff flag, or a coordinator) watches every chat of the
  consortium and may whisper, join and take over; a colleague `@named` in an internal note of a chat
  (routing.mentions) may watch that chat and whisper in it, nothing more.
- `patron_chat(chat_id, token, origin)`: the patron's side, the chat a token opens, from a page
  the consortium allows.

Refusals never say whether a chat exists (docs/protocol.md): a wrong token and a missing chat are
the same `NoSuchChat`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q, QuerySet
from django.http.request import validate_host
from django.utils import timezone

from consortium.models import Consortium
from consortium.origins import DEFAULT_PORTS, Origin, parse_origin
from consortium.queries import KeyedRow, KeyedValues
from consortium.tokens import token_hash_matches
from libraries.models import StaffProfile
from routing.models import LIVE_STATES, Chat, Mention, Offer


class PatronRefused(Exception):
    """The patron's request is refused (the callers answer 404/403, or close the socket with 4403)."""


class NoSuchChat(PatronRefused):
    """No chat, or not the chat this token opens."""


class OriginRefused(PatronRefused):
    """The page asking is not one the chat's consortium allows."""


# --- staff ----------------------------------------------------------------------------------------


def staff_of(user: AbstractBaseUser | AnonymousUser | None) -> StaffProfile | None:
    """The active staff profile of a signed-in, active user; None for anyone else."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    return _STAFF_OF(user.pk)


def is_active_staff(user_id: int) -> bool:
    """staff_of's answer as a yes or no, in one narrow read (the accept frame asks it again each time)."""
    return _ACTIVE_STAFF(user_id) is not None


def _active_staff(user_id: int) -> QuerySet[StaffProfile]:
    return StaffProfile.objects.filter(user_id=user_id, is_active=True, user__is_active=True)


# Compiled once per process (consortium.queries); a user id is never negative. staff_of is asked at
# every staff socket's connection: a reconnect storm asks it for every console at once.
_ACTIVE_STAFF = KeyedValues(lambda user_id: _active_staff(user_id).values_list("pk"), key_field="user_id",
                            sentinel=-7_000_001)
_STAFF_OF = KeyedRow(lambda user_id: _active_staff(user_id).select_related("library__consortium", "user"),
                     key_field="user_id", sentinel=-7_000_002)


def took_part_q(profile: StaffProfile) -> Q:
    """Chats this librarian holds, answered, or accepted at some point (a filter on Chat)."""
    accepted = Offer.objects.filter(librarian=profile, status=Offer.Status.ACCEPTED).values("chat_id")
    return Q(librarian=profile) | Q(answered_by=profile) | Q(pk__in=accepted)


def own_chats_q(profile: StaffProfile) -> Q:
    """Chats a librarian reads as their own: those they took part in, and their library's patrons'.
    (A coordinator reads every chat of the consortium besides: may_read; the console's history lists
    only these.)"""
    return took_part_q(profile) | Q(home_library_id=profile.library_id)


def took_part(profile: StaffProfile, chat: Chat) -> bool:
    return Chat.objects.filter(pk=chat.pk).filter(took_part_q(profile)).exists()


def is_coordinator_of(profile: StaffProfile, chat: Chat) -> bool:
    return profile.role == StaffProfile.Role.COORDINATOR and profile.library.consortium_id == chat.consortium_id


def may_read(profile: StaffProfile | None, chat: Chat) -> bool:
    """May this librarian read the chat's transcript and files? Never across consortia."""
    if profile is None or profile.library.consortium_id != chat.consortium_id:
        return False
    return is_coordinator_of(profile, chat) or Chat.objects.filter(pk=chat.pk).filter(own_chats_q(profile)).exists()


def may_trace(profile: StaffProfile | None, chat: Chat) -> bool:
    """May this librarian read the chat's routing trace (who was offered it, who declined)?"""
    if profile is None or profile.library.consortium_id != chat.consortium_id:
        return False
    return is_coordinator_of(profile, chat) or took_part(profile, chat)


def is_mentor(profile: StaffProfile) -> bool:
    """The staff flag, set by coordinators; coordinators are mentors whatever it says."""
    return profile.is_mentor or profile.role == StaffProfile.Role.COORDINATOR


def may_mentor(profile: StaffProfile | None, chat: Chat) -> bool:
    """May this librarian join the chat or take it over? A mentor of the chat's consortium."""
    return profile is not None and profile.library.consortium_id == chat.consortium_id and is_mentor(profile)


# How long after its end a chat can still be opened read-only: a mention read the next morning still
# opens, but the mentor view is no way around who may read old transcripts (docs/privacy.md).
WATCH_AFTER_END = timedelta(days=1)


def may_watch(profile: StaffProfile | None, chat: Chat, now: datetime | None = None) -> bool:
    """May this librarian open the chat read-only and whisper to its librarian? A mentor of its
    consortium, or a colleague of the consortium named (`@name`) in one of its internal notes; while
    the chat is live, or for WATCH_AFTER_END after it ended."""
    if profile is None or profile.library.consortium_id != chat.consortium_id:
        return False
    if chat.state not in LIVE_STATES and (chat.ended_at or chat.last_activity_at) < (
            (now or timezone.now()) - WATCH_AFTER_END):
        return False
    return is_mentor(profile) or Mention.objects.filter(chat_id=chat.pk, librarian=profile).exists()


# --- patrons --------------------------------------------------------------------------------------


def token_matches(chat: Chat, token: object) -> bool:
    return token_hash_matches(chat.token_hash, token)


def secure_enough(origin: Origin) -> bool:
    """With HTTPS on, a page on plain http is never believed: anyone on its path can rewrite it."""
    return origin.scheme == "https" or not settings.HTTPS


def own_origin(origin: str) -> bool:
    """A page of this site: one of ALLOWED_HOSTS, by https on its default port (443, the site nginx
    serves) while HTTPS is on; by http or https on any port while it is off (development servers and
    the tests run on ports of their own)."""
    parsed = parse_origin(origin)
    if parsed is None or not secure_enough(parsed):
        return False
    if settings.HTTPS and parsed.port != DEFAULT_PORTS["https"]:
        return False
    return validate_host(parsed.host, settings.ALLOWED_HOSTS)


def origin_allowed(origin: str | None, consortium: Consortium | None) -> bool:
    """A page of this site, one the consortium allows, or no browser at all (no Origin header).

    Compared by scheme, host and port, each written one way (consortium/origins.py): the consortium's
    ``https://WWW.Example.org:443/`` is the browser's ``https://www.example.org``, and neither
    ``http://www.example.org`` nor ``https://www.example.org:8443`` is.
    """
    if not origin:
        return True  # not a browser: nothing to forge a cookie or a page with
    if own_origin(origin):
        return True
    parsed = parse_origin(origin)
    if parsed is None or consortium is None or not secure_enough(parsed):
        return False
    return any(parse_origin(allowed) == parsed for allowed in consortium.allowed_origins or [])


# Compiled once per process (consortium.queries.KeyedRow): every patron socket's join asks it, and in a
# reconnect storm every patron's at once; the ORM compiled it anew each time, with an ORDER BY that
# `.first()` added (1.7 ms of CPU a call, docs/benchmarks.md, session 23).
_PATRON_CHAT = KeyedRow(lambda chat_id: Chat.objects.select_related(
    "consortium", "home_library", "librarian__library", "librarian__user").filter(pk=chat_id))


def patron_chat(chat_id: str, token: object, origin: str | None) -> Chat:
    """The chat `token` opens, asked for from `origin`; raises NoSuchChat or OriginRefused."""
    chat = patron_chat_again(chat_id)
    if chat is None or not token_matches(chat, token):
        raise NoSuchChat(chat_id)
    if not origin_allowed(origin, chat.consortium):
        raise OriginRefused(origin)
    return chat


def patron_chat_again(chat_id: str) -> Chat | None:
    """A chat read afresh, with what the patron's frames show of it (its librarian and their library),
    for a patron who has shown its token already (patron_chat)."""
    return _PATRON_CHAT(chat_id)
