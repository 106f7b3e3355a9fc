"""Issue 13, item 16: schemathesis fuzzes the HTTP API against its own description
(/api/v1/openapi.json) on the production stack (real daphne, workers, PostgreSQL and Redis).

A patron's chat, held by a coordinator who accepted it, with a file in it: the description's path
parameters get these as examples, and every request carries the chat's token and the coordinator's
session (with the CSRF header), so the answers that need them are reached, not only the 404s.
Checked: no 5xx, and every answer's status, content type, headers and body as described."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live.stack import PASSWORD, Stack, librarian, start_chat, world

WORLD = world("oa", libraries=[{"slug": "oa-a"}], staff=[{"username": "oacoord", "library": "oa-a",
                                                          "role": "coordinator"}])
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance")
# Examples per operation in the fuzzing phase (the coverage phase adds its own boundary cases).
EXAMPLES = 6
# A 1x1 PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478"
                    "9c6360000002000154a24f5d0000000049454e44ae426082")
# These two end the chat (or delete it): run last, on their own, so the rest meet a live chat.
ENDING = ("chat_end", "chat_delete")
# Twisted (under daphne) parses a multipart body itself before the application sees it, and answers
# one it cannot parse (only a closing boundary, say) with a bare 400: no body, no Content-Type
# (docs/security.md, "Uploads"). The upload is fuzzed on its own, without the checks of a JSON body.
BARE_400 = ("chat_files",)
CHECKS_BARE_400 = "not_a_server_error,status_code_conformance,response_headers_conformance"


def own_redis() -> str:
    """The stack's Redis: the same server, database 15. Rate-limit counters are keyed by client
    address, not by stack, and schemathesis starts many chats from 127.0.0.1: in the suite's own
    database they would use up the in-process tests' budget (20 a minute) and answer them 429."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    return re.sub(r"(/\d+)?$", "/15", url, count=1)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack.prepare([WORLD], REDIS_URL=own_redis()).running() as s:
        yield s


async def held_chat(base: str) -> tuple[dict[str, Any], dict[str, str], str]:
    """A chat the coordinator accepted, with a file the patron sent: the chat, the session, the file."""
    sock, _hello, cookies = await librarian(base, "oacoord", PASSWORD)
    try:
        chat = await start_chat(base, "oa", "Where are the maps?", library="oa-a")
        await sock.expect("offer", chat=chat["id"], timeout=15)
        await sock.send({"type": "accept", "chat": chat["id"]})
        await sock.expect("assigned", chat=chat["id"], timeout=15)
    finally:
        await sock.close()
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        r = await c.post(f"/api/v1/chats/{chat['id']}/files", files={"file": ("map.png", PNG, "image/png")},
                         headers={"Authorization": f"Bearer {chat['token']}"})
    assert r.status_code == 201, r.text
    return chat, cookies, r.json()["file"]["id"]


def with_examples(description: dict[str, Any], chat: str, file_id: str) -> dict[str, Any]:
    parameters = description["components"]["parameters"]
    parameters["consortium"]["example"] = "oa"
    parameters["chat"]["example"] = chat
    for parameter in description["paths"]["/api/v1/chats/{chat_id}/files/{file_id}"]["parameters"]:
        if parameter.get("name") == "file_id":
            parameter["example"] = file_id
    return description


def operations(description: dict[str, Any]) -> list[str]:
    return [op["operationId"] for item in description["paths"].values() for op in item.values()
            if isinstance(op, dict) and "operationId" in op]


def schemathesis(stack: Stack, schema: Path, headers: dict[str, str], *selection: str, checks: str = CHECKS) -> str:
    command = [str(SCHEMATHESIS), "run", str(schema), "--url", stack.base(), "--checks", checks,
               "--max-examples", str(EXAMPLES), "--workers", "1", "--request-timeout", "30",
               "--suppress-health-check", "all", "--no-shrink", *selection]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=schema.parent)
    output = run.stdout + run.stderr
    print(output)
    errors = [line[:3000] for line in stack.logs().splitlines() if "unhandled error" in line]
    assert run.returncode == 0, output[-6000:] + "\n".join(errors)
    return output


async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_description(
        stack: Stack, tmp_path: Path) -> None:
    base = stack.base()
    chat, cookies, file_id = await held_chat(base)
    async with httpx.AsyncClient(base_url=base, timeout=20) as c:
        served = await c.get("/api/v1/openapi.json")
    assert served.status_code == 200
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(with_examples(served.json(), chat["id"], file_id)))
    headers = {"Authorization": f"Bearer {chat['token']}",
               "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
               "X-CSRFToken": cookies["csrftoken"]}

    output = schemathesis(stack, schema, headers, *[f"--exclude-operation-id={o}" for o in ENDING + BARE_400])
    output += schemathesis(stack, schema, headers, *[f"--include-operation-id={o}" for o in BARE_400],
                           checks=CHECKS_BARE_400)
    output += schemathesis(stack, schema, headers, *[f"--include-operation-id={o}" for o in ENDING])
    # Every run tested every operation it selected (a filter matching nothing would pass vacuously).
    selected = [int(n) for n in re.findall(r"Selected: (\d+)/", output)]
    tested = [int(n) for n in re.findall(r"Tested: (\d+)", output)]
    everything = len(operations(served.json()))
    assert selected == tested == [everything - len(ENDING) - len(BARE_400), len(BARE_400), len(ENDING)], \
        output[-3000:]
    assert "unhandled error" not in stack.logs()
