"""consortium.queries.KeyedRow: a query by one key, compiled once, gives what the ORM gives."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from consortium.queries import KeyedRow, KeyedRows, KeyedValues, only_row
from libraries.models import StaffProfile
from routing import access, selectors
from routing.models import Chat, Connection, LibrarianPresence, Message, Offer
from routing.services import common, offers, presence
from tests.routing.routing_helpers import T0, at, go_online, held_by_lena, patron_joins, staff, start, world

pytestmark = pytest.mark.django_db


def _fields(obj: Any) -> dict[str, Any] | None:
    return None if obj is None else {k: v for k, v in vars(obj).items() if k != "_state"}


def _orm_lock(chat_id: str) -> Chat | None:
    return only_row(Chat.objects.select_for_update(of=("self",))
                    .select_related("consortium", "home_library", "librarian__library", "librarian__user")
                    .filter(pk=chat_id))


def _assert_same(ours: Chat, orm: Chat) -> None:
    assert _fields(ours) == _fields(orm)
    assert _fields(ours.consortium) == _fields(orm.consortium)
    assert _fields(ours.home_library) == _fields(orm.home_library)
    assert _fields(ours.librarian) == _fields(orm.librarian)
    if orm.librarian is not None:
        assert _fields(ours.librarian.library) == _fields(orm.librarian.library)
        assert _fields(ours.librarian.user) == _fields(orm.librarian.user)
    assert (ours._state.db, ours._state.adding) == (orm._state.db, orm._state.adding)


def test_chat_lock_gives_the_orms_chat_with_its_relations_read_in_one_statement() -> None:
    w = world()
    go_online(staff(w.home, "lena"), at(-60))
    waiting = start(w.consortium, T0, library_slug="home")
    held = start(w.consortium, T0, library_slug="partner")
    librarian = staff(w.partner, "pat")
    Chat.objects.filter(pk=held.pk).update(librarian=librarian, state="active")
    for chat in (waiting, held, waiting):  # the second call of a kind runs the kept plan
        with transaction.atomic():
            orm = _orm_lock(chat.pk)
            with CaptureQueriesContext(connection) as run:
                ours = common.chat_lock(chat.pk)
                assert ours is not None and orm is not None
                _assert_same(ours, orm)  # every relation there already: reading them asks nothing
            assert len(run.captured_queries) == 1
            if connection.vendor == "postgresql":
                assert "FOR UPDATE OF" in run.captured_queries[0]["sql"]
    assert Chat.objects.get(pk=held.pk).librarian == librarian


def test_chat_lock_of_an_unknown_chat_is_none() -> None:
    with transaction.atomic():
        assert common.chat_lock("0" * 32) is None
        assert common.chat_lock("0" * 32, skip_locked=True) is None


@pytest.mark.django_db(transaction=True)
def test_chat_lock_outside_a_transaction_is_refused_where_the_orm_refuses_it() -> None:
    """PostgreSQL: a lock that would end with its statement is a mistake, refused (SQLite takes no row locks)."""
    with transaction.atomic():
        common.chat_lock("0" * 32)  # compiled inside a transaction: the kept plan is what runs next
    if connection.features.has_select_for_update:
        with pytest.raises(TransactionManagementError):
            _orm_lock("0" * 32)
        with pytest.raises(TransactionManagementError):
            common.chat_lock("0" * 32)
    else:
        assert _orm_lock("0" * 32) is None and common.chat_lock("0" * 32) is None


class Compiles:
    """How many queries Django compiles while counting (SQLCompiler.as_sql calls)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        as_sql = SQLCompiler.as_sql

        def counting(compiler: SQLCompiler, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return as_sql(compiler, *args, **kwargs)

        monkeypatch.setattr(SQLCompiler, "as_sql", counting)


def test_a_keyed_row_compiles_its_query_once(monkeypatch: pytest.MonkeyPatch) -> None:
    w = world()
    chats = [start(w.consortium, T0, library_slug="home"), start(w.consortium, T0, library_slug="partner")]
    compiles = Compiles(monkeypatch)
    row = KeyedRow(lambda chat_id: Chat.objects.select_related("consortium").filter(pk=chat_id))
    found = [row(chat.pk) for chat in chats * 3]
    assert [c.pk for c in found if c is not None] == [c.pk for c in chats * 3]
    assert [c.consortium.slug for c in found if c is not None] == [w.consortium.slug] * 6
    assert compiles.count == 1


def test_a_key_the_sentinel_cannot_stand_for_is_read_by_the_orm_each_time() -> None:
    w = world()
    profile = staff(w.home, "lena")
    by_text_sentinel = KeyedRow(lambda pk: StaffProfile.objects.select_related("user").filter(pk=pk))
    with pytest.raises((ValueError, TypeError)):  # an integer key cannot be compiled with a text sentinel
        by_text_sentinel(profile.pk)
    by_number = KeyedRow(lambda pk: StaffProfile.objects.select_related("user").filter(pk=pk), sentinel=-7_000_001)
    found = by_number(profile.pk)
    assert found is not None and found.pk == profile.pk and found.user.username == profile.user.username
    assert by_number(-1) is None


def test_keyed_values_give_the_orms_first_row_of_values_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    w = world()
    chats = [start(w.consortium, T0, library_slug="home"), start(w.consortium, T0, library_slug="partner")]
    Chat.objects.filter(pk=chats[1].pk).update(state="ended")
    values = KeyedValues(lambda chat_id: Chat.objects.filter(pk=chat_id).values_list("consortium_id", "state"))
    compiles = Compiles(monkeypatch)
    found = [values(chat.pk) for chat in chats * 2] + [values("0" * 32)]
    assert compiles.count == 1
    monkeypatch.undo()
    assert found == [tuple(Chat.objects.filter(pk=chat.pk).values_list("consortium_id", "state")[0])
                     for chat in chats * 2] + [None]
    assert found[1] == (w.consortium.pk, "ended")


def test_an_accounts_staff_check_and_a_librarians_presence_lock_read_the_rows_as_they_are_now() -> None:
    w = world()
    profile = staff(w.home, "lena")
    go_online(profile, at(-60))
    assert access.is_active_staff(profile.user_id)
    StaffProfile.objects.filter(pk=profile.pk).update(is_active=False)
    assert not access.is_active_staff(profile.user_id)  # asked afresh: switched off is off at once
    StaffProfile.objects.filter(pk=profile.pk).update(is_active=True)
    type(profile.user).objects.filter(pk=profile.user_id).update(is_active=False)
    assert not access.is_active_staff(profile.user_id)
    assert not access.is_active_staff(-1)
    with transaction.atomic():
        presence = common.presence_lock(profile)
        assert presence.librarian_id == profile.pk
        assert presence == LibrarianPresence.objects.get(librarian=profile)


def test_keyed_rows_give_the_orms_list_in_its_order_with_its_relations_compiled_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    w = world()
    lena, pat = staff(w.home, "lena"), staff(w.home, "pat")
    go_online(lena, at(-60))
    started = [start(w.consortium, at(i), library_slug=slug) for i, slug in enumerate(["home", "partner", "home"])]
    for i, chat in enumerate(started):
        Chat.objects.filter(pk=chat.pk).update(librarian=lena, state="active", accepted_at=at(10 - i))

    def orm(librarian_id: int) -> list[Chat]:
        return list(Chat.objects.filter(librarian_id=librarian_id, state="active").select_related("home_library")
                    .order_by("accepted_at"))

    rows = KeyedRows(lambda librarian_id: Chat.objects.filter(librarian_id=librarian_id, state="active")
                     .select_related("home_library").order_by("accepted_at"),
                     key_field="librarian_id", sentinel=-7_000_009)
    compiles = Compiles(monkeypatch)
    found = [rows(lena.pk), rows(pat.pk), rows(lena.pk)]
    assert compiles.count == 1
    monkeypatch.undo()
    expected = orm(lena.pk)
    assert [c.pk for c in expected] == [c.pk for c in reversed(started)]  # by accepted_at
    assert found[1] == [] and [c.pk for c in found[0]] == [c.pk for c in expected] == [c.pk for c in found[2]]
    for ours, theirs in zip(found[0], expected, strict=True):
        assert _fields(ours) == _fields(theirs)
        with CaptureQueriesContext(connection) as run:
            assert _fields(ours.home_library) == _fields(theirs.home_library)
        assert not run.captured_queries  # read with the chat


def test_a_consoles_hello_lists_its_chats_and_open_offers_as_they_are_now() -> None:
    w = world()
    lena = staff(w.home, "lena")
    go_online(lena, at(-60))
    first, second = start(w.consortium, at(1), library_slug="home"), start(w.consortium, at(2), library_slug="home")
    state = presence.staff_connected(lena, "staff-lena-2", "p1", at(3))
    assert [o.chat_id for o in state.offers] == [first.pk, second.pk] and state.chats == []
    assert state.offers[0].chat.home_library == w.home
    offers.chat_accept(lena, second.pk, at(4))
    state = presence.staff_connected(lena, "staff-lena-3", "p1", at(5))
    assert [c.pk for c in state.chats] == [second.pk] and state.chats[0].home_library == w.home
    assert [o.chat_id for o in state.offers] == [first.pk]
    assert all(o.status == Offer.Status.OPEN for o in state.offers)


def test_a_connection_counted_in_again_under_its_channel_is_one_row_brought_up_to_date() -> None:
    w = world()
    lena = staff(w.home, "lena")
    chat = start(w.consortium, T0, library_slug="home")
    patron_joins(chat, at(1), process="p1", channel="chan-1")
    with CaptureQueriesContext(connection) as run:
        presence.connection_open(Connection(channel_name="chan-1", kind=Connection.Kind.STAFF, process_id="p1",
                                            librarian=lena, opened_at=at(2)))
    assert len(run.captured_queries) == 1
    row = Connection.objects.get(channel_name="chan-1")
    assert (row.kind, row.librarian_id, row.chat_id, row.opened_at) == ("staff", lena.pk, None, at(2))
    patron_joins(chat, at(3), process="p1", channel="chan-2")
    assert set(Connection.objects.values_list("channel_name", "kind")) == {("chan-1", "staff"), ("chan-2", "patron")}


def test_a_joins_history_is_the_orms_for_the_patron_and_each_librarian_compiled_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """selectors.messages_after through two KeyedRows (chat, after and reader as keys; the reader twice in
    its query): every message, field and annotation the ORM's query gives, for every reader."""
    w = world()
    lena, chat = held_by_lena(w)
    mentor, other = staff(w.home, "mia"), staff(w.home, "olga")
    lines = [("patron", None, None, False, "Where are the passes?"), ("librarian", lena, None, False, "Here."),
             ("librarian", lena, None, True, "note: regular"), ("librarian", mentor, lena, True, "whisper to lena"),
             ("librarian", lena, mentor, True, "whisper back to mia"), ("patron", None, None, False, "Thanks")]
    for i, (sender, by, to, internal, body) in enumerate(lines, start=50):
        Message.objects.create(chat=chat, seq=i, sender=sender, librarian=by, whisper_to=to, internal=internal,
                               name=by.display_name if by else "Pat", body=body, at=at(i))
    Message.objects.create(chat=start(w.consortium, T0, library_slug="home"), seq=50, sender="patron",
                           name="x", body="another chat's", at=at(1))

    def orm(after: int, *, for_patron: bool, reader: int | None) -> list[Message]:
        return list(selectors._history(chat.pk, after, None, for_patron=for_patron, reader=reader))

    cases = [(after, True, None) for after in (0, 51, 99)] + [
        (after, False, reader) for after in (0, 52) for reader in (lena.pk, mentor.pk, other.pk)]
    expected = [orm(after, for_patron=p, reader=r) for after, p, r in cases]
    for kept in (selectors._HISTORY_FOR_PATRON, selectors._HISTORY_FOR_STAFF):
        monkeypatch.setattr(kept, "_plans", {})  # as in a process that has not read a history yet
    compiles = Compiles(monkeypatch)
    found = [selectors.messages_after(chat.pk, after, for_patron=p, reader=r) for after, p, r in cases * 2]
    assert compiles.count == 2  # one query for the patron's, one for a librarian's
    monkeypatch.undo()
    assert len(found) == 2 * len(expected)
    for ours, theirs in zip(found, expected * 2, strict=True):
        assert [_fields(m) for m in ours] == [_fields(m) for m in theirs]
        assert [m.chat_channel for m in ours] == [chat.channel] * len(theirs)
    bodies = {(after, p, r): [m.body for m in rows] for (after, p, r), rows in zip(cases, expected, strict=True)}
    assert "note: regular" not in bodies[(0, True, None)] and bodies[(99, True, None)] == []
    assert "whisper to lena" in bodies[(0, False, lena.pk)] and "whisper back to mia" in bodies[(0, False, lena.pk)]
    assert "whisper to lena" in bodies[(0, False, mentor.pk)]  # its author
    assert not {"whisper to lena", "whisper back to mia"} & set(bodies[(0, False, other.pk)])
    assert "another chat's" not in bodies[(0, False, other.pk)]
    for beyond in (2**31, 10**30):  # a client's `after` past any seq (and past the column's type): nothing
        assert selectors.messages_after(chat.pk, beyond, for_patron=True) == []
        assert selectors.messages_after(chat.pk, beyond, for_patron=False, reader=lena.pk) == []


def test_a_librarian_holds_a_chat_only_while_it_is_active_and_theirs() -> None:
    w = world()
    lena, chat = held_by_lena(w)
    olga = staff(w.home, "olga")
    assert selectors.librarian_holds(lena.pk, chat.pk)
    assert not selectors.librarian_holds(olga.pk, chat.pk)
    assert not selectors.librarian_holds(lena.pk, "0" * 16)
    Chat.objects.filter(pk=chat.pk).update(state="ended")
    assert not selectors.librarian_holds(lena.pk, chat.pk)
