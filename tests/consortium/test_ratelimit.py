"""consortium.ratelimit: every limit declared one way, and the per-connection meter of the sockets."""

from __future__ import annotations

import pytest
from django.test import override_settings

from consortium import ratelimit


def test_a_limit_reads_its_rate_from_its_setting_or_its_declaration() -> None:
    with override_settings(CHAT_START_RATE="2/h", REDIS_URL=""):
        limit = ratelimit.Limit("test-start", setting="CHAT_START_RATE")
        assert [limit.hit("10.0.0.1") for _ in range(2)] == [0, 0]
        assert limit.hit("10.0.0.1") > 0, "the third in an hour waits"
        assert limit.hit("10.0.0.2") == 0, "counted per key"
        fixed = ratelimit.Limit("test-fixed", "1/h")
        assert fixed.hit("k") == 0 and fixed.hit("k") > 0


def test_a_rate_is_n_per_second_minute_or_hour() -> None:
    assert ratelimit.parse_rate("20/m") == (20, 60)
    with pytest.raises(ValueError, match="N/s"):
        ratelimit.parse_rate("20 per minute")


def test_the_meter_spends_refuses_and_counts_strikes() -> None:
    meter = ratelimit.Meter(ratelimit.Bucket(size=3.0, refill_per_second=0.0, bad_frame_cost=2.0,
                                             strikes_before_close=2))
    assert meter.spend(2.0) and meter.spend(1.0)
    assert not meter.spend(1.0), "empty, and nothing refills"
    meter.strike()
    assert not meter.exhausted
    meter.strike()
    assert meter.exhausted
