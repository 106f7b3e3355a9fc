"""libraries announces changes to the apps above it (libraries/signals.py) and never imports them."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from consortium.models import Consortium
from libraries import services
from libraries.models import Queue
from libraries.signals import queues_changed
from tests.factories import make_consortium, make_shared_queue

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
LIBRARIES = Path(__file__).resolve().parents[2] / "libraries"


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_no_module_of_libraries_imports_routing() -> None:
    modules = sorted(LIBRARIES.rglob("*.py"))
    assert LIBRARIES / "services.py" in modules, "the walk finds the modules"
    offending = {str(path.relative_to(LIBRARIES)): sorted(name for name in _imported_modules(path)
                                                          if name == "routing" or name.startswith("routing."))
                 for path in modules}
    assert {path: names for path, names in offending.items() if names} == {}


def test_the_import_check_sees_an_import_of_routing_in_any_form(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import routing.services\ndef f():\n    from routing import events\n")
    assert {"routing.services", "routing"} <= _imported_modules(module)


@pytest.fixture
def heard() -> Any:
    calls: list[dict[str, Any]] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    queues_changed.connect(listener, weak=False)
    yield calls
    queues_changed.disconnect(listener)


@pytest.mark.django_db(transaction=True)
def test_queues_changed_is_sent_after_commit_with_the_consortium_and_the_queue_slugs(heard: list[Any]) -> None:
    consortium = make_consortium("vr")
    queue = make_shared_queue(consortium, "statewide")
    with transaction.atomic():
        services.closure_add(queue, NOW, date(2026, 12, 25), date(2026, 12, 26), "Christmas")
        assert heard == [], "not before the commit"
    assert heard == [{"sender": Consortium, "signal": queues_changed, "consortium": consortium,
                      "queues": frozenset({"statewide"}), "now": NOW}]


@pytest.mark.django_db(transaction=True)
def test_queues_changed_is_not_sent_when_the_change_rolls_back(heard: list[Any]) -> None:
    queue = make_shared_queue(make_consortium("vr"), "statewide")

    def change_then_fail() -> None:
        with transaction.atomic():
            services.closure_add(queue, NOW, date(2026, 12, 25), date(2026, 12, 26))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert heard == [] and not Queue.objects.get(pk=queue.pk).closures.exists()
