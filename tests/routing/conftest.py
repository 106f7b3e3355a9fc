from __future__ import annotations

from collections.abc import Iterator

import pytest

from routing import events, process
from tests.routing.routing_helpers import Sent


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every frame the services publish, recorded at the boundary to the channel layer."""
    recorder = Sent()
    monkeypatch.setattr(events, "_send", recorder)
    return recorder


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The frames the services publish dropped at the boundary to the channel layer, unrecorded."""
    monkeypatch.setattr(events, "_send", lambda group, event: None)


@pytest.fixture
def fresh_process() -> Iterator[None]:
    """routing.process as a new process has it (no heartbeat or layer-watch task, not registered),
    before and after the test: for the socket tests, `pytest.mark.usefixtures("fresh_process")`."""
    process.reset_for_tests()
    yield
    process.reset_for_tests()
