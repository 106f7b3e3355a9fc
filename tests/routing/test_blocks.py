"""Patron blocks (routing.blocks, routing.services.blocks): End and block, the refused start, expiry by
the clock, lifting and extending, and never across consortia. The SMS side is in tests/texting."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from libraries.models import StaffProfile
from routing import blocks, privacy
from routing.models import Chat, ChatState, PatronBlock, Ticket, TraceEvent
from routing.services import blocks as block_services
from routing.services import chats, offers, transfers
from routing.services.common import Refused, ServiceError
from tests.factories import PASSWORD, make_consortium, make_library, make_shared_queue, make_staff
from tests.routing.routing_helpers import go_online

pytestmark = pytest.mark.django_db(transaction=True)
OWN = "http://127.0.0.1:8000"
DEVICE = "a1" * 24
IP = "198.51.100.7"


@pytest.fixture
def w(quiet: None) -> dict[str, Any]:
    consortium = make_consortium("bl", allowed_origins=["https://www.alpha-library.org"])
    make_shared_queue(consortium, "statewide")
    alpha = make_library(consortium, "alpha")
    other = make_consortium("elsewhere")
    make_shared_queue(other, "statewide-2")
    far = make_library(other, "far")
    return {"consortium": consortium, "other": other, "alpha": alpha,
            "ana": make_staff(alpha, "ana"), "coord": make_staff(alpha, "coord", role="coordinator"),
            "far_coord": make_staff(far, "farcoord", role="coordinator"), "far": make_staff(far, "faro")}


def held_chat(w: dict[str, Any], now: datetime, *, librarian: str = "ana", device: str = DEVICE,
              ip: str | None = IP, consortium: str = "consortium") -> Chat:
    profile = w[librarian]
    go_online(profile, now)
    chat, _token = chats.chat_start(consortium=w[consortium], question="Q?", now=now, device=device, ip=ip,
                                    library_slug=profile.library.slug)
    offers.chat_accept(profile, chat.pk, now)
    return Chat.objects.get(pk=chat.pk)


def start(w: dict[str, Any], now: datetime, *, device: str = DEVICE, ip: str | None = "203.0.113.9",
          consortium: str = "consortium") -> Chat:
    chat, _token = chats.chat_start(consortium=w[consortium], question="Again", now=now, device=device, ip=ip)
    return chat


def test_end_and_block_ends_the_chat_and_blocks_its_device_until_the_block_expires(w: dict[str, Any]) -> None:
    now = timezone.now()
    chat = held_chat(w, now)
    assert chat.patron_device == blocks.device_hash(DEVICE) and DEVICE not in chat.patron_device
    block = block_services.chat_end_and_block(w["ana"], chat.pk, now, reason="abusive language")
    chat.refresh_from_db()
    assert chat.state == ChatState.ENDED and chat.end_reason == "librarian"
    assert (block.expires_at - now) == timedelta(hours=blocks.DEFAULT_HOURS)
    assert block.hint == {"device": f"…{chat.patron_device[-4:]}"} and block.address_hash == ""
    traced = TraceEvent.objects.get(chat=chat, kind="blocked")
    assert traced.data["block"] == block.pk and traced.data["librarian"] == w["ana"].pk
    assert [h["action"] for h in block.history] == ["created"]

    # The same browser, from another address: refused, and nothing is kept.
    with pytest.raises(ServiceError) as refused:
        start(w, now + timedelta(minutes=5))
    assert refused.value.reason == "blocked"
    assert Chat.objects.count() == 1
    with pytest.raises(ServiceError):
        start(w, block.expires_at - timedelta(seconds=1))
    # Another browser at the patron's address is not refused: the address was not asked for.
    start(w, now + timedelta(minutes=5), device="b2" * 24, ip=IP)
    # At its time the block lifts on its own: nothing has to run.
    assert start(w, block.expires_at).state in (ChatState.QUEUED, ChatState.UNSTAFFED)
    assert blocks.status_of(block, block.expires_at) == "expired"


def test_a_block_never_crosses_consortia(w: dict[str, Any]) -> None:
    now = timezone.now()
    block_services.chat_end_and_block(w["ana"], held_chat(w, now).pk, now, reason="spam")
    assert start(w, now, consortium="other").consortium_id == w["other"].pk  # the same device, elsewhere
    # ...and a coordinator of the other consortium can neither see nor lift it.
    block = PatronBlock.objects.get()
    with pytest.raises(Refused):
        block_services.block_lift(consortium_id=w["other"].pk, block_id=block.pk, by=w["far_coord"],
                                  by_name="far", note="", now=now)


def test_the_address_is_blocked_only_when_asked_and_never_past_a_day(w: dict[str, Any]) -> None:
    now = timezone.now()
    chat = held_chat(w, now, librarian="coord", device="")  # a client that sent no device id
    with pytest.raises(Refused) as refused:
        block_services.chat_end_and_block(w["coord"], chat.pk, now, reason="threats")
    assert refused.value.reason == "no_key"
    chat.refresh_from_db()
    assert chat.state == ChatState.ACTIVE  # refused whole: the chat goes on, no block
    assert not PatronBlock.objects.exists()

    block = block_services.chat_end_and_block(w["coord"], chat.pk, now, reason="threats", hours=168, address=True)
    assert block.address_until == now + blocks.ADDRESS_MAX and block.expires_at == now + timedelta(days=7)
    assert block.hint == {"address": "198.51.100.x"}
    with pytest.raises(ServiceError):
        start(w, now + timedelta(hours=1), device="", ip=IP)
    # After a day the address is free again (public computers), though the block runs a week.
    start(w, now + timedelta(hours=25), device="", ip=IP)
    # An IPv6 block covers the whole /64.
    assert blocks.address_hash("2001:db8:1:2::5") == blocks.address_hash("2001:db8:1:2:ffff::1")
    assert blocks.address_hash("2001:db8:1:2::5") != blocks.address_hash("2001:db8:1:3::5")


@pytest.mark.parametrize(("who", "hours", "reason", "ok"), [
    ("ana", 24, "", False), ("ana", 72, "spam", False), ("ana", "24", "spam", False), ("ana", 4, "spam", True),
    ("coord", 720, "spam", True), ("coord", 721, "spam", False)])
def test_a_reason_is_required_and_librarians_block_for_a_day_at_most(w: dict[str, Any], who: str, hours: Any,
                                                                     reason: str, ok: bool) -> None:
    now = timezone.now()
    chat = held_chat(w, now, librarian=who)
    if ok:
        block_services.chat_end_and_block(w[who], chat.pk, now, reason=reason, hours=hours)
        assert PatronBlock.objects.get().expires_at == now + timedelta(hours=hours)
    else:
        with pytest.raises(Refused) as refused:
            block_services.chat_end_and_block(w[who], chat.pk, now, reason=reason, hours=hours)
        assert refused.value.reason == "invalid"
        assert not PatronBlock.objects.exists() and Chat.objects.get().state == ChatState.ACTIVE


def test_a_patron_who_ended_the_chat_can_be_blocked_after_once(w: dict[str, Any]) -> None:
    now = timezone.now()
    chat = held_chat(w, now)
    chats.chat_end(chat.pk, now, by="patron")
    block = block_services.chat_end_and_block(w["ana"], chat.pk, now + timedelta(minutes=1), reason="threats")
    assert block.expires_at == now + timedelta(minutes=1, hours=24)
    assert Chat.objects.get(pk=chat.pk).end_reason == "patron"  # its end stays the patron's
    with pytest.raises(Refused) as refused:
        block_services.chat_end_and_block(w["ana"], chat.pk, now + timedelta(minutes=2), reason="again")
    assert refused.value.reason == "conflict" and PatronBlock.objects.count() == 1


def test_only_the_chats_librarian_may_block_its_patron(w: dict[str, Any]) -> None:
    now = timezone.now()
    chat = held_chat(w, now)
    for profile in (w["coord"], w["far"]):
        with pytest.raises(Refused) as refused:
            block_services.chat_end_and_block(profile, chat.pk, now, reason="x")
        assert refused.value.reason == "not_found"
    assert not PatronBlock.objects.exists()


def test_a_coordinator_lifts_and_extends_a_block_and_each_is_kept_in_its_history(w: dict[str, Any]) -> None:
    now = timezone.now()
    block = block_services.chat_end_and_block(w["ana"], held_chat(w, now).pk, now, reason="spam")
    common = {"consortium_id": w["consortium"].pk, "block_id": block.pk, "by": w["coord"], "by_name": "Coord"}
    later = now + timedelta(hours=1)
    block = block_services.block_extend(until=now + timedelta(days=10), note="again today", now=later, **common)
    with pytest.raises(ServiceError):
        start(w, now + timedelta(days=9))
    with pytest.raises(Refused):  # 30 days after it was made at most
        block_services.block_extend(until=now + timedelta(days=30, seconds=1), note="", now=later, **common)
    block_services.block_extend(until=now + timedelta(days=30), note="", now=later, **common)
    block = block_services.block_lift(note="talked to them", now=later + timedelta(hours=1), **common)
    assert start(w, later + timedelta(hours=1)).consortium_id == w["consortium"].pk
    assert [(h["action"], h["by_name"], h["note"]) for h in block.history] == [
        ("created", "Ana", ""), ("extended", "Coord", "again today"), ("extended", "Coord", ""),
        ("lifted", "Coord", "talked to them")]
    assert block.lifted_by == w["coord"] and blocks.status_of(block, later) == "lifted"
    with pytest.raises(Refused):  # lifted is final
        block_services.block_lift(note="", now=later, **common)


def test_a_block_that_has_ended_is_not_extended_back_into_force(w: dict[str, Any]) -> None:
    now = timezone.now()
    block = block_services.chat_end_and_block(w["ana"], held_chat(w, now).pk, now, reason="spam")
    common = {"consortium_id": w["consortium"].pk, "block_id": block.pk, "by": w["coord"], "by_name": "Coord"}
    after = block.expires_at + timedelta(minutes=1)
    with pytest.raises(Refused) as refused:
        block_services.block_extend(until=after + timedelta(days=1), note="", now=after, **common)
    assert refused.value.reason == "not_active"
    assert start(w, after).consortium_id == w["consortium"].pk  # the patron may chat again
    assert [h["action"] for h in PatronBlock.objects.get(pk=block.pk).history] == ["created"]


def test_blocks_that_ended_longer_ago_than_the_retention_are_deleted_nightly(w: dict[str, Any]) -> None:
    now = timezone.now()
    block = block_services.chat_end_and_block(w["ana"], held_chat(w, now).pk, now, reason="spam")
    days = w["consortium"].transcript_retention_days
    assert privacy.blocks_delete_expired(w["consortium"], block.expires_at + timedelta(days=days)) == 0
    assert privacy.blocks_delete_expired(w["other"], now + timedelta(days=days + 2)) == 0  # not its block
    privacy.chats_scrub_expired(block.expires_at + timedelta(days=days, seconds=1))
    assert not PatronBlock.objects.exists()


# --- over HTTP ----------------------------------------------------------------------------------------


def post(client: Client, path: str, body: Any, origin: str = OWN) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", HTTP_ORIGIN=origin)


def signed_in(profile: StaffProfile) -> Client:
    client = Client()
    assert client.login(username=profile.user.username, password=PASSWORD)
    return client


def test_a_blocked_device_is_refused_a_chat_but_may_leave_a_question(w: dict[str, Any]) -> None:
    now = timezone.now()
    go_online(w["ana"], now)
    client = Client()
    r = post(client, "/api/v1/bl/chats", {"question": "Hello", "device": DEVICE, "library": "alpha"})
    assert r.status_code == 201
    offers.chat_accept(w["ana"], r.json()["id"], now)
    librarian = signed_in(w["ana"])
    r = post(librarian, f"/staff/api/chats/{r.json()['id']}/block", {"reason": "abuse", "hours": 4})
    assert r.status_code == 201 and r.json()["keys"] == ["device"]

    # The widget on a library's own site: refused with the neutral code, readable there (CORS).
    site = "https://www.alpha-library.org"
    r = post(client, "/api/v1/bl/chats", {"question": "Hello again", "device": DEVICE}, origin=site)
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    assert r["Access-Control-Allow-Origin"] == site
    assert "block" not in r.json()["error"]["detail"]  # neutral: it accuses nobody
    r = post(client, "/api/v1/bl/questions", {"question": "Hello again", "email": "p@example.org"}, origin=site)
    assert r.status_code == 201 and Ticket.objects.filter(source="question_form").count() == 1
    # Its time passes (the block's end moved to a moment ago, as the clock cannot be here): it may chat.
    block = PatronBlock.objects.get()
    PatronBlock.objects.filter(pk=block.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    started = post(client, "/api/v1/bl/chats", {"question": "Hello", "device": DEVICE, "library": "alpha"})
    assert started.status_code == 201
    # Blocked again, for a day; a coordinator lifts it: the device may chat again.
    offers.chat_accept(w["ana"], started.json()["id"], now)
    assert post(librarian, f"/staff/api/chats/{started.json()['id']}/block", {"reason": "again"}).status_code == 201
    assert post(client, "/api/v1/bl/chats", {"question": "Hi", "device": DEVICE}).status_code == 403
    coordinator = signed_in(w["coord"])
    block = PatronBlock.objects.get(lifted_at=None, expires_at__gt=timezone.now())
    r = coordinator.post("/coordinator/bl/blocks/", {"action": "lift", "block": block.pk, "note": "ok now"})
    assert r.status_code == 302
    assert post(client, "/api/v1/bl/chats", {"question": "Hello", "device": DEVICE}).status_code == 201


def test_the_block_endpoint_refuses_with_its_reasons(w: dict[str, Any]) -> None:
    now = timezone.now()
    chat = held_chat(w, now)
    librarian = signed_in(w["ana"])
    r = post(librarian, f"/staff/api/chats/{chat.pk}/block", {"reason": " "})
    assert r.status_code == 400 and "reason" in r.json()["error"]["fields"]
    r = post(librarian, f"/staff/api/chats/{chat.pk}/block", {"reason": "x", "hours": 720})
    assert r.status_code == 400 and "hours" in r.json()["error"]["fields"]
    assert post(signed_in(w["far"]), f"/staff/api/chats/{chat.pk}/block", {"reason": "x"}).status_code == 404
    assert Client().post(f"/staff/api/chats/{chat.pk}/block", {}).status_code == 401
    assert not PatronBlock.objects.exists()


def test_the_coordinators_page_lists_lifts_and_extends_only_its_consortiums_blocks(w: dict[str, Any]) -> None:
    now = timezone.now()
    chat = held_chat(w, now)
    chats.message_post(chat.pk, sender="patron", body="a rude line", client_id="r", now=now)
    mine = block_services.chat_end_and_block(w["ana"], chat.pk, now, reason="rude words")
    theirs = block_services.chat_end_and_block(
        w["far"], held_chat(w, now, librarian="far", consortium="other", device="c3" * 24).pk, now,
        reason="elsewhere reason")
    coordinator = signed_in(w["coord"])
    page = coordinator.get("/coordinator/bl/blocks/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "rude words" in html and f"…{mine.device_hash[-4:]}" in html and "elsewhere reason" not in html
    assert DEVICE not in html and mine.device_hash not in html
    assert signed_in(w["ana"]).get("/coordinator/bl/blocks/").status_code == 403
    # One block with its chat, to judge it by (a coordinator of another library reads it).
    detail = coordinator.get(f"/coordinator/bl/blocks/{mine.pk}/")
    assert detail.status_code == 200 and "a rude line" in detail.content.decode()
    assert coordinator.get(f"/coordinator/bl/blocks/{theirs.pk}/").status_code == 404
    assert signed_in(w["far_coord"]).get(f"/coordinator/bl/blocks/{mine.pk}/").status_code == 404
    assert signed_in(w["ana"]).get(f"/coordinator/bl/blocks/{mine.pk}/").status_code == 403
    assert signed_in(w["far_coord"]).get("/coordinator/bl/blocks/").status_code == 404
    # Another consortium's block cannot be touched from here.
    r = coordinator.post("/coordinator/bl/blocks/", {"action": "lift", "block": theirs.pk})
    assert r.status_code == 400
    theirs.refresh_from_db()
    assert theirs.lifted_at is None
    r = coordinator.post("/coordinator/bl/blocks/", {"action": "extend", "block": mine.pk, "days": "30"})
    assert r.status_code == 302
    mine.refresh_from_db()
    assert mine.expires_at == mine.created_at + timedelta(days=blocks.MAX_DAYS)  # 24 h + 30 days, capped
    assert mine.history[-1]["action"] == "extended" and mine.history[-1]["by"] == w["coord"].pk
    assert coordinator.post("/coordinator/bl/blocks/", {"action": "extend", "block": mine.pk,
                                                        "days": "2"}).status_code == 400


# --- at once (concurrent writers need PostgreSQL: SQLite's test database serializes the threads) -------


def _at_once(*actions: Any) -> list[str]:
    """Run the actions in threads released together (each its own connection); what each returned or
    the reason it was refused."""
    results: list[str] = [""] * len(actions)
    barrier = threading.Barrier(len(actions))

    def run(i: int) -> None:
        from django.db import connection as own

        barrier.wait()
        try:
            results[i] = str(actions[i]())
        except ServiceError as e:
            results[i] = e.reason
        finally:
            own.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.postgres
def test_two_tabs_ending_and_blocking_at_once_make_one_block(w: dict[str, Any]) -> None:
    now = timezone.now()
    chat = held_chat(w, now)
    results = _at_once(*[lambda: block_services.chat_end_and_block(w["ana"], chat.pk, now, reason="x")] * 4)
    assert sorted(r for r in results if not r.startswith("block ")) == ["conflict"] * 3, results
    assert PatronBlock.objects.count() == 1
    assert TraceEvent.objects.filter(chat=chat, kind="ended").count() == 1


@pytest.mark.postgres
def test_end_and_block_racing_a_transfer_has_one_outcome(w: dict[str, Any]) -> None:
    al = make_staff(w["alpha"], "al")
    go_online(al, timezone.now())
    for i in range(3):
        now = timezone.now()
        chat = held_chat(w, now, device=f"{i:02d}" * 24)
        results = _at_once(
            lambda: block_services.chat_end_and_block(w["ana"], chat.pk, now, reason="x"),  # noqa: B023
            lambda: transfers.chat_transfer(w["ana"], chat.pk, now, to_librarian="al"))  # noqa: B023
        chat.refresh_from_db()
        if PatronBlock.objects.filter(chat=chat).exists():  # the block first: over, the transfer refused
            assert chat.state == ChatState.ENDED and results[1] == "not_found", results
        else:  # the transfer first: the chat is no longer ana's, so nothing is blocked
            assert results[0] == "not_found" and chat.state != ChatState.ENDED, results
            assert chat.librarian_id != w["ana"].pk
