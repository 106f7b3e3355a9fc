"""consortium.collector: under daphne the web process's garbage collector is settled once the
application is loaded (docs/scaling.md, "Garbage collector pauses"); anywhere else, and when an operator
switches it off, CPython's collector is left as it is."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# As daphne's command line starts (deploy/Procfile): its module loaded (with its asyncio reactor), then the
# application imported (the embedded settings).
# Reported: the young generation's threshold, how many objects are frozen, and whether a class of the
# project (loaded with the application) is among the objects the collector still scans.
DAPHNE_START = ("import gc, json; import daphne.cli; import consortium.asgi; from routing.router import Librarian; "
                "print(json.dumps({'young': gc.get_threshold()[0], 'frozen': gc.get_freeze_count(), "
                "'scanned': any(o is Librarian for o in gc.get_objects())}))")


def start(tmp_path: Path, young: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "VR_GC_YOUNG",
                                                            "DJANGO_SETTINGS_MODULE"}}
    env.update({"VR_DATA_DIR": str(tmp_path), **({"VR_GC_YOUNG": young} if young is not None else {})})
    done = subprocess.run([sys.executable, "-c", DAPHNE_START], capture_output=True, text=True, timeout=120,
                          env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_under_daphne_what_is_loaded_is_frozen_and_young_collections_are_rarer(tmp_path: Path) -> None:
    report = start(tmp_path, None)
    assert report["young"] == 10_000
    assert isinstance(report["frozen"], int) and report["frozen"] > 50_000, "Django, Channels, the project"
    assert report["scanned"] is False, "the project's classes are no longer scanned"


@pytest.mark.parametrize("young", ["0", "2500"])
def test_an_operator_sets_the_young_threshold_or_switches_it_off(tmp_path: Path, young: str) -> None:
    report = start(tmp_path, young)
    if young == "0":
        assert report == {"young": 700, "frozen": 0, "scanned": True}, "CPython's collector as it is"
    else:
        assert report["young"] == 2500 and report["frozen"] != 0


def test_outside_a_server_the_collector_is_left_as_it_is() -> None:
    import consortium.asgi  # noqa: F401  (the test suite imports the application without daphne)

    assert gc.get_threshold()[0] == 700
    assert gc.get_freeze_count() == 0
