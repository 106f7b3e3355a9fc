"""/healthz tells the truth: 200 when the database and the channel layer answer, 503 otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.live.stack import ROOT, free_port, pg_server_url


@contextmanager
def daphne(tmp_path: Path, database_url: str, redis_url: str) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "DJANGO_SECRET_KEY": "h" * 50,
                "DJANGO_DEBUG": "false", "HTTPS": "false", "VR_DATA_DIR": str(tmp_path)})
    proc = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                             "consortium.asgi:application"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize(("db_ok", "layer_ok"), [(True, True), (False, True), (True, False)])
def test_healthz_tells_the_truth(tmp_path: Path, db_ok: bool, layer_ok: bool) -> None:
    database = f"{pg_server_url()}/postgres" if db_ok else f"{pg_server_url().rsplit(':', 1)[0]}:1/nowhere"
    redis = os.environ["REDIS_URL"] if layer_ok else "redis://127.0.0.1:1/0"
    with daphne(tmp_path, database, redis) as base:
        r = httpx.get(f"{base}/healthz", timeout=15)
    assert r.status_code == (200 if db_ok and layer_ok else 503)
    assert r.json() == {"database": db_ok, "channel_layer": layer_ok}
