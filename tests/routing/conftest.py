from __future__ import annotations

import pytest

from routing import events
from tests.routing.routing_helpers import Sent


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    """Every frame the services publish, recorded at the boundary to the channel layer."""
    recorder = Sent()
    monkeypatch.setattr(events, "_send", recorder)
    return recorder
