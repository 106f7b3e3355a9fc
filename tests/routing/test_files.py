"""Upload bounds (issue 13.4): files per chat, bytes per chat, the consortium's budget, the per-chat rate,
and a large file spooled to disk rather than held in memory."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.test import Client

from consortium import ratelimit
from routing import files
from routing.models import Chat, ChatFile
from tests.routing import test_patron_pages
from tests.routing.test_message_store import at_once
from tests.routing.test_patron_pages import PNG, new_chat, present, upload

pytestmark = pytest.mark.django_db(transaction=True)
world = test_patron_pages.world  # the same consortium, libraries and staff as the other file tests


def codes(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else ""


def test_a_chat_holds_at_most_its_number_of_files(client: Client, world: dict[str, Any], settings: Any) -> None:
    settings.CHAT_FILES_MAX_COUNT = 3
    present(world["a1"])
    chat, token = new_chat(world)
    for n in range(3):
        assert upload(client, chat, PNG, f"p{n}.png", token).status_code == 201
    r = upload(client, chat, PNG, "p3.png", token)
    assert codes(r) == (413, "too_many_files") and "3 files" in r.json()["error"]["detail"]
    assert ChatFile.objects.filter(chat=chat).count() == 3
    assert upload(client, chat, PNG, "p0.png", token).status_code == 200, "a retry of a stored file still answers"
    other, other_token = new_chat(world)
    assert upload(client, other, PNG, "p.png", other_token).status_code == 201, "the bound is per chat"


def test_a_chat_holds_at_most_its_bytes_and_the_consortium_its_budget(client: Client, world: dict[str, Any],
                                                                       settings: Any) -> None:
    present(world["a1"])
    chat, token = new_chat(world)
    settings.CHAT_FILES_MAX_BYTES = 3 * len(PNG) + 10
    for n in range(3):
        assert upload(client, chat, PNG, f"p{n}.png", token).status_code == 201
    assert codes(upload(client, chat, PNG, "p3.png", token)) == (413, "chat_files_too_large")
    settings.CHAT_FILES_MAX_BYTES = 50 * 1024 * 1024
    settings.CONSORTIUM_FILES_BUDGET_BYTES = 4 * len(PNG)
    other, other_token = new_chat(world)
    assert upload(client, other, PNG, "q.png", other_token).status_code == 201
    assert codes(upload(client, other, PNG, "r.png", other_token)) == (413, "over_budget")
    assert files.consortium_usage(world["consortium"].pk) == 4 * len(PNG)
    # A scrubbed chat's files no longer count (scrubbing deletes them).
    Chat.objects.filter(pk=chat.pk).update(scrubbed=True)
    assert upload(client, other, PNG, "r.png", other_token).status_code == 201
    body = Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode()
    assert f'vr_files_bytes{{consortium="pat"}} {float(2 * len(PNG))}' in body
    assert f'vr_files_budget_bytes{{consortium="pat"}} {float(4 * len(PNG))}' in body


def test_uploads_to_one_chat_are_rate_limited(client: Client, world: dict[str, Any], settings: Any) -> None:
    settings.CHAT_FILE_UPLOAD_RATE = "2/h"
    present(world["a1"])
    chat, token = new_chat(world)
    assert upload(client, chat, PNG, "a.png", token).status_code == 201
    assert upload(client, chat, PNG, "b.png", token).status_code == 201
    r = upload(client, chat, PNG, "c.png", token)
    assert codes(r) == (429, "rate_limited") and int(r["Retry-After"]) >= 1
    assert ChatFile.objects.filter(chat=chat).count() == 2
    other, other_token = new_chat(world)
    assert upload(client, other, PNG, "a.png", other_token).status_code == 201, "another chat has its own rate"
    assert ratelimit.CHAT_FILE_UPLOAD.bucket == "file-upload"


def test_a_large_file_is_spooled_to_disk_and_stored_in_chunks(client: Client, world: dict[str, Any],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    present(world["a1"])
    chat, token = new_chat(world)
    seen: list[type] = []
    real_check = files.check

    def spy(uploaded: Any) -> files.Upload:
        seen.append(type(uploaded))
        return real_check(uploaded)

    monkeypatch.setattr(files, "check", spy)
    big = PNG + b"\x00" * (3 * 1024 * 1024)
    r = upload(client, chat, big, "big.png", token)
    assert r.status_code == 201, r.content
    assert seen == [TemporaryUploadedFile], "past FILE_UPLOAD_MAX_MEMORY_SIZE Django spools to a temporary file"
    stored = ChatFile.objects.get(chat=chat)
    assert stored.size == len(big)
    with stored.data.open("rb") as handle:
        assert handle.read() == big


@pytest.mark.postgres  # concurrent writers: the PostgreSQL suite runs it (SQLite's test database serializes them)
def test_two_processes_cannot_both_take_the_last_place(world: dict[str, Any], settings: Any) -> None:
    settings.CHAT_FILES_MAX_COUNT = 1
    present(world["a1"])
    chat, token = new_chat(world)
    answers = at_once([partial(lambda n: upload(Client(), chat, PNG, f"t{n}.png", token).status_code, n)
                       for n in range(4)])
    assert sorted(answers) == [201, 413, 413, 413]
    assert ChatFile.objects.filter(chat=chat).count() == 1


def test_a_file_kept_in_a_chat_that_is_over_has_the_same_bounds_once_and_never_in_a_scrubbed_chat(
        world: dict[str, Any], settings: Any, sent: Any) -> None:
    """routing.files.keep: a patron's file for a chat that is over (a texted picture whose text became a
    follow-up: texting.media), posted into its transcript under the chat's lock like any message."""
    from routing.models import ChatState, Message
    from routing.services.common import ServiceError

    chat, _token = new_chat(world)
    Chat.objects.filter(pk=chat.pk).update(state=ChatState.UNSTAFFED)
    chat = Chat.objects.get(pk=chat.pk)
    picture = files.Upload(data=PNG, name="text-1.png", content_type="image/png")
    message, created = files.keep(chat, picture, client_id="SM1-0")
    assert created and message.seq == chat.last_seq + 1 and message.sender == "patron"
    assert Chat.objects.get(pk=chat.pk).last_seq == message.seq
    assert sent.to_chat(chat, "message")[-1]["file"]["id"] == message.file_id
    again, created = files.keep(chat, picture, client_id="SM1-0")
    assert (again.pk, created) == (message.pk, False)
    assert ChatFile.objects.filter(chat=chat).count() == 1, "a task run again stores nothing twice"

    settings.CHAT_FILES_MAX_COUNT = 1
    with pytest.raises(files.FileRefused) as refused:
        files.keep(chat, picture, client_id="SM2-0")
    assert refused.value.code == "too_many_files"
    settings.CHAT_FILES_MAX_COUNT = 10
    Chat.objects.filter(pk=chat.pk).update(scrubbed=True)
    with pytest.raises(ServiceError):
        files.keep(chat, picture, client_id="SM3-0")
    assert ChatFile.objects.filter(chat=chat).count() == 1
    assert Message.objects.filter(chat=chat, file__isnull=False).count() == 1
