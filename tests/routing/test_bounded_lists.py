"""Bounded answers (issue 13.9): a huge chat's transcript and trace come in pages with a link to the rest,
and the chats CSV streams (as it is written, on the test client's WSGI path and on daphne's ASGI path)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient, Client
from django.utils import timezone

from consortium import csv_safe
from routing.api import views
from routing.models import Chat, Message, TraceEvent
from routing.services import chats, followups
from routing.staff import views as staff_views
from tests.factories import PASSWORD
from tests.routing import test_api

pytestmark = pytest.mark.django_db(transaction=True)
world = test_api.world  # the consortium "api", its libraries, a coordinator (coord) and staff
LINES = 2500


def huge_chat(w: dict[str, Any]) -> tuple[Chat, str]:
    now = timezone.now()
    chat, token = chats.chat_start(consortium=w["consortium"], question="A long one", library_slug="alpha", now=now)
    # Every third line an internal note: the patron's pages skip them, the staff's carry them.
    Message.objects.bulk_create([Message(chat=chat, seq=seq, sender="patron", body=f"line {seq}",
                                         at=now + timedelta(milliseconds=seq), internal=seq % 3 == 0)
                                 for seq in range(2, LINES + 2)], batch_size=500)
    Chat.objects.filter(pk=chat.pk).update(last_seq=LINES + 1)
    return chat, token


def read_all(client: Client, url: str, **headers: Any) -> tuple[list[dict[str, Any]], list[int]]:
    messages: list[dict[str, Any]] = []
    sizes = []
    next_url: str | None = url
    while next_url:
        r = client.get(next_url, **headers)
        assert r.status_code == 200, r.content
        page = r.json()
        sizes.append(len(page["messages"]))
        messages += page["messages"]
        next_url = page["next"]
        assert len(sizes) < 20, "the pages end"
    return messages, sizes


def test_a_huge_transcript_comes_in_bounded_pages(client: Client, world: dict[str, Any]) -> None:
    chat, token = huge_chat(world)
    url = f"/api/v1/chats/{chat.pk}/transcript"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    messages, sizes = read_all(client, url, **auth)
    assert max(sizes) == views.TRANSCRIPT_PAGE and len(sizes) == 2
    public = [1] + [seq for seq in range(2, LINES + 2) if seq % 3]
    assert [m["seq"] for m in messages] == public, "every line once, in order, no internal note"
    # A smaller page on request, resuming after a given seq.
    r = client.get(f"{url}?after=10&limit=5", **auth).json()
    assert [m["seq"] for m in r["messages"]] == [11, 13, 14, 16, 17]
    assert r["next"] == f"{url}?after=17&limit=5"
    # The staff read the internal notes too.
    coord = Client()
    assert coord.login(username="coord", password=PASSWORD)
    messages, _sizes = read_all(coord, url)
    assert [m["seq"] for m in messages] == list(range(1, LINES + 2))
    for bad in ("limit=0", f"limit={views.TRANSCRIPT_PAGE + 1}", "limit=x", "after=-1", "after=1e3"):
        r = client.get(f"{url}?{bad}", **auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid", bad


def test_a_short_transcript_is_one_page_as_before(client: Client, world: dict[str, Any]) -> None:
    chat, token = chats.chat_start(consortium=world["consortium"], question="Short", library_slug="alpha",
                                   now=timezone.now())
    r = client.get(f"/api/v1/chats/{chat.pk}/transcript", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [m["body"] for m in r["messages"]] == ["Short"] and r["next"] is None


def test_a_long_trace_comes_in_bounded_pages(world: dict[str, Any]) -> None:
    chat, _token = chats.chat_start(consortium=world["consortium"], question="Traced", library_slug="alpha",
                                    now=timezone.now())
    first = TraceEvent.objects.filter(chat=chat).count()
    now = timezone.now()
    TraceEvent.objects.bulk_create([TraceEvent(chat=chat, at=now + timedelta(seconds=n), kind="step_skipped",
                                               data={"n": n}) for n in range(1500)])
    coord = Client()
    assert coord.login(username="coord", password=PASSWORD)
    url: str | None = f"/api/v1/chats/{chat.pk}/trace"
    events: list[dict[str, Any]] = []
    sizes = []
    while url:
        body = coord.get(url).json()
        sizes.append(len(body["events"]))
        events += body["events"]
        url = body["next"]
    assert sizes == [views.TRACE_PAGE, first + 1500 - views.TRACE_PAGE]
    assert [e["n"] for e in events if e["kind"] == "step_skipped" and "n" in e] == list(range(1500))


def test_the_chats_csv_streams(world: dict[str, Any]) -> None:
    for n in range(30):
        chats.chat_start(consortium=world["consortium"], question=f"Q{n}", library_slug="alpha", now=timezone.now())
    coord = Client()
    assert coord.login(username="coord", password=PASSWORD)
    r = coord.get("/api/v1/api/reports/chats.csv")
    assert r.status_code == 200 and r.streaming, "a StreamingHttpResponse, not a body built whole"
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(rows) == 30 and rows[0]["home_library"] == "alpha"


async def test_the_chats_csv_streams_in_chunks_under_asgi(world: dict[str, Any],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_safe, "ROWS_PER_CHUNK", 10)

    def make() -> None:
        for n in range(25):
            chats.chat_start(consortium=world["consortium"], question=f"Q{n}", library_slug="alpha",
                             now=timezone.now())

    await sync_to_async(make)()
    coord = AsyncClient()
    user = await sync_to_async(lambda: world["coord"].user)()
    await coord.aforce_login(user)
    r = await coord.get("/api/v1/api/reports/chats.csv")
    assert r.status_code == 200 and r.streaming and r.is_async, "an asynchronous stream: ASGI sends it as read"
    chunks = [chunk async for chunk in r.streaming_content]
    # 10 rows a chunk: the header and 25 chats, each chunk read in the request's database thread.
    assert [chunk.count(b"\n") for chunk in chunks] == [10, 10, 6]
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == 25
    # The view and the chunks ran in the thread-sensitive thread; its connection would outlive the test
    # database (the test client keeps connections open between requests, as it must).
    await sync_to_async(connections.close_all)()


def staff_client(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_the_consoles_history_of_a_huge_chat_comes_in_pages(world: dict[str, Any]) -> None:
    chat, _token = huge_chat(world)
    Chat.objects.filter(pk=chat.pk).update(state="ended")
    a1 = staff_client("a1")
    first = a1.get(f"/staff/history/{chat.pk}/").content.decode()
    assert first.count('class="msg"') == staff_views.TRANSCRIPT_PAGE
    later = re.search(r'<a href="(\?after=\d+)" rel="next">Later messages</a>', first)
    assert later and later[1] == f"?after={staff_views.TRANSCRIPT_PAGE}"
    rest = a1.get(f"/staff/history/{chat.pk}/{later[1]}").content.decode()
    seqs = [int(s) for s in re.findall(r'data-seq="(\d+)"', rest)]
    assert seqs == list(range(staff_views.TRANSCRIPT_PAGE + 1, 2 * staff_views.TRANSCRIPT_PAGE + 1))
    assert 'rel="next"' in rest and "From the start" in rest


def test_the_consoles_past_chats_and_follow_ups_come_in_pages(world: dict[str, Any],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    now = timezone.now()
    made = [chats.chat_start(consortium=world["consortium"], question=f"Past {n}", library_slug="alpha",
                             now=now + timedelta(seconds=n))[0].pk for n in range(staff_views.HISTORY_PAGE + 5)]
    Chat.objects.filter(pk__in=made).update(state="ended")
    a1 = staff_client("a1")
    first = a1.get("/staff/history/").content.decode()
    assert len(re.findall(r'<tr data-chat="', first)) == staff_views.HISTORY_PAGE
    older = re.search(r'<a href="([^"]+)" rel="next">Older chats</a>', first)
    assert older
    second = a1.get("/staff/history/" + html.unescape(older[1])).content.decode()
    shown = re.findall(r'<tr data-chat="([^"]+)"', first) + re.findall(r'<tr data-chat="([^"]+)"', second)
    assert sorted(shown) == sorted(made) and 'rel="next"' not in second and "Newer chats" in second
    # Follow-ups: the same pages (three tickets, two a page here).
    monkeypatch.setattr(staff_views, "TICKETS_PAGE", 2)
    for n in range(3):
        followups.question_leave(consortium=world["consortium"], question=f"Later {n}", email="p@example.org",
                                 library_slug="alpha", now=now)
    page1 = a1.get("/staff/tickets/").content.decode()
    nxt = re.search(r'<a href="([^"]+)" rel="next">', page1)
    assert len(re.findall(r"<tr data-ticket=", page1)) == 2 and nxt
    page2 = a1.get("/staff/tickets/" + html.unescape(nxt[1])).content.decode()
    assert len(re.findall(r"<tr data-ticket=", page2)) == 1 and 'rel="next"' not in page2
