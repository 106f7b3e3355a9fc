"""Settings come from the environment exactly as docs/running.md says; production refuses unsafe ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'layer': s.CHANNEL_LAYERS['default']['BACKEND'], "
    "'eager': s.CELERY_TASK_ALWAYS_EAGER, 'debug': s.DEBUG, 'email': s.EMAIL_BACKEND, 'https': s.HTTPS, "
    "'hosts': s.ALLOWED_HOSTS, 'rate': s.CHAT_START_RATE}))"
)
STRONG_KEY = "k" * 50


def settings_with(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {
        "DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "DJANGO_DEBUG", "HTTPS", "EMAIL_URL", "ALLOWED_HOSTS",
        "CHAT_START_RATE", "DJANGO_SETTINGS_MODULE"}}
    base.update({"DJANGO_SETTINGS_MODULE": "consortium.settings", "VR_DATA_DIR": str(tmp_path), **env})
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True,
                          timeout=60)


def loaded(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_no_configuration_means_the_embedded_default(tmp_path: Path) -> None:
    got = loaded(settings_with(tmp_path))
    assert got["db"] == "django.db.backends.sqlite3"
    assert got["layer"] == "channels.layers.InMemoryChannelLayer"
    assert got["eager"] is True and got["debug"] is True and got["https"] is False
    assert got["email"] == "django.core.mail.backends.filebased.EmailBackend"
    assert got["rate"] == "20/m"


def test_database_and_redis_urls_switch_to_the_production_engines(tmp_path: Path) -> None:
    got = loaded(settings_with(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/x",
                               REDIS_URL="redis://127.0.0.1:6379/3", DJANGO_SECRET_KEY=STRONG_KEY,
                               ALLOWED_HOSTS="ask.example.org", EMAIL_URL="smtp://mail.example.org:25",
                               CHAT_START_RATE="60/h"))
    assert got["db"] == "django.db.backends.postgresql"
    assert got["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert got["eager"] is False and got["debug"] is False and got["https"] is True
    assert got["email"] == "django.core.mail.backends.smtp.EmailBackend"
    assert got["hosts"] == ["ask.example.org"] and got["rate"] == "60/h"


@pytest.mark.parametrize(("env", "complaint"), [
    ({}, "DJANGO_SECRET_KEY must be set"),
    ({"DJANGO_SECRET_KEY": "dev-abc"}, "development key"),
    ({"DJANGO_SECRET_KEY": "CHANGE-ME-generate-a-long-random-key"}, "CHANGE-ME placeholder"),
    ({"DJANGO_SECRET_KEY": "x" * 40 + "change-me" + "y" * 10}, "CHANGE-ME placeholder"),
    ({"DJANGO_SECRET_KEY": STRONG_KEY, "DJANGO_DEBUG": "true"}, "DJANGO_DEBUG must be false"),
    ({"DJANGO_SECRET_KEY": STRONG_KEY, "DJANGO_DEBUG": "maybe"}, "true or false"),
    ({"DJANGO_SECRET_KEY": STRONG_KEY, "EMAIL_URL": "pigeon://coop"}, "EMAIL_URL"),
    ({"DJANGO_SECRET_KEY": STRONG_KEY, "TRUSTED_PROXIES": "nginx"}, "TRUSTED_PROXIES"),
    ({"DJANGO_SECRET_KEY": STRONG_KEY, "VR_SIGNIN_ACCOUNT_FAILURES": "10", "VR_SIGNIN_CLIENT_FAILURES": "5"},
     "VR_SIGNIN_CLIENT_FAILURES must be at least"),
])
def test_production_refuses_unsafe_settings(tmp_path: Path, env: dict[str, str], complaint: str) -> None:
    result = settings_with(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/x", **env)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_production_refuses_the_example_files_secret_key(tmp_path: Path) -> None:
    # The very value an operator gets by copying deploy/env.example, read from the file, not retyped here.
    example = (ROOT / "deploy" / "env.example").read_text()
    key = next(line.split("=", 1)[1].strip() for line in example.splitlines()
               if line.startswith("DJANGO_SECRET_KEY="))
    result = settings_with(tmp_path, DATABASE_URL="postgres://u@127.0.0.1:5432/x", DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "CHANGE-ME placeholder" in result.stderr
