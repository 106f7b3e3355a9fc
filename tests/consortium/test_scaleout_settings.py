"""Scale-out settings from the environment: the channel layer's Redis servers (REDIS_URL, or several in
VR_CHANNEL_REDIS_URLS) and PostgreSQL behind a transaction-mode pool (VR_DB_TRANSACTION_POOLING)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import django, json; django.setup(); from django.conf import settings as s; "
         "from routing import loop_db; "
         "db = s.DATABASES['default']; "
         "print(json.dumps({'hosts': s.CHANNEL_LAYERS['default']['CONFIG']['hosts'], 'broker': s.CELERY_BROKER_URL, "
         "'options': db['OPTIONS'], 'no_cursors': db['DISABLE_SERVER_SIDE_CURSORS'], "
         "'loop_prepare_threshold': loop_db._params().get('prepare_threshold', 'psycopg default')}))")


def layer(tmp_path: Path, **env: str) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items()
            if k not in {"DJANGO_SETTINGS_MODULE", "VR_CHANNEL_REDIS_URLS", "VR_DB_TRANSACTION_POOLING"}}
    base.update({"DJANGO_SETTINGS_MODULE": "consortium.settings", "VR_DATA_DIR": str(tmp_path),
                 "DATABASE_URL": "postgres://u@127.0.0.1:5432/x", "DJANGO_SECRET_KEY": "k" * 50,
                 "REDIS_URL": "redis://10.9.0.1:6379/0", **env})
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def test_one_redis_by_default(tmp_path: Path) -> None:
    assert layer(tmp_path)["hosts"] == [{"address": "redis://10.9.0.1:6379/0"}]


def test_the_layer_shards_over_several_servers_and_the_broker_stays(tmp_path: Path) -> None:
    got = layer(tmp_path, VR_CHANNEL_REDIS_URLS=" redis://10.9.0.2:6379/0, redis://10.9.0.3:6379/0 ")
    assert got["hosts"] == [{"address": "redis://10.9.0.2:6379/0"}, {"address": "redis://10.9.0.3:6379/0"}]
    assert got["broker"] == "redis://10.9.0.1:6379/0"


def test_database_url_options_are_kept(tmp_path: Path) -> None:
    got = layer(tmp_path, DATABASE_URL="postgres://u@db.example.org:5432/x?sslmode=verify-full")
    options = got["options"]
    assert options["sslmode"] == "verify-full" and options["connect_timeout"] == 5
    # Prepared statements on (Django's default turns psycopg's off, and with it every prepare=True).
    assert got["no_cursors"] is False and options["prepare_threshold"] == 5
    assert got["loop_prepare_threshold"] == 5  # the sockets' own connections (routing.loop_db) alike


def test_transaction_pooling_turns_off_server_side_cursors_and_prepared_statements(tmp_path: Path) -> None:
    got = layer(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:6432/x", VR_DB_TRANSACTION_POOLING="true")
    assert got["no_cursors"] is True
    options = got["options"]
    assert "prepare_threshold" in options and options["prepare_threshold"] is None
    # The sockets' own connections (routing.loop_db) prepare nothing either: not even after five runs.
    assert got["loop_prepare_threshold"] is None
