"""The staffing forecast's queueing model against known results (Erlang C tables) and its own limits."""

from __future__ import annotations

import math

import pytest

from routing.queueing import Load, conditional_wait, erlang_a, erlang_b, erlang_c, predict


@pytest.mark.parametrize(("servers", "offered", "expected"), [
    (2, 1.0, 1 / 3),  # exact: C(2, 1) = 1/3
    (3, 2.0, 4 / 9),  # exact: C(3, 2) = 4/9
    (11, 10.0, 0.6821),  # the textbook call centre: 10 Erlangs on 11 agents wait 68.21% of the time
    (5, 2.0, 0.0597),  # Erlang C table: 5 servers, 2 Erlangs
    (10, 5.0, 0.0361),  # Erlang C table: 10 servers, 5 Erlangs
])
def test_erlang_c_matches_the_tables(servers: int, offered: float, expected: float) -> None:
    assert erlang_c(servers, offered) == pytest.approx(expected, abs=5e-5)


def test_erlang_b_matches_the_tables() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(5, 2.0) == pytest.approx(0.0367, abs=5e-5)
    assert erlang_b(10, 5.0) == pytest.approx(0.0184, abs=5e-5)


def test_the_textbook_call_centre_service_level_and_waits() -> None:
    # 200 calls an hour of 180 s each on 11 agents: 39% answered within 20 s (the Erlang C worked
    # example), and the median wait from P(W > t) = C exp(-(c mu - lambda) t).
    found = predict(Load(arrivals_per_hour=200, handle_seconds=180, librarians=11, capacity=1, answer_within=20))
    assert found.model == "erlang_c"
    assert found.service_level == pytest.approx(0.3896, abs=5e-4)
    assert found.wait_p50 == pytest.approx(180 * math.log(0.6821 / 0.5), rel=1e-3)
    assert found.wait_p90 == pytest.approx(180 * math.log(0.6821 / 0.1), rel=1e-3)


def test_several_chats_at_once_count_as_that_many_slots() -> None:
    one_each = predict(Load(arrivals_per_hour=20, handle_seconds=600, librarians=6, capacity=1))
    three_each = predict(Load(arrivals_per_hour=20, handle_seconds=600, librarians=2, capacity=3))
    assert three_each == one_each
    alone = predict(Load(arrivals_per_hour=20, handle_seconds=600, librarians=2, capacity=1))
    assert alone.wait_p50 > three_each.wait_p50
    assert alone.service_level < three_each.service_level


def test_waits_never_shrink_as_arrivals_grow() -> None:
    previous = predict(Load(arrivals_per_hour=1, handle_seconds=600, librarians=2, capacity=3, patience_seconds=300))
    for rate in range(2, 60, 3):  # up to 58 chats of 10 minutes an hour on 6 slots: past what Erlang C can say
        found = predict(Load(arrivals_per_hour=rate, handle_seconds=600, librarians=2, capacity=3,
                             patience_seconds=300))
        assert found.model == "erlang_a"
        assert found.wait_p90 >= previous.wait_p90 - 0.5
        assert found.service_level <= previous.service_level + 1e-6
        previous = found
    assert 300 < previous.wait_p90 < 3600  # finite: the patrons ahead give up (a patience of 300 s)


def test_erlang_a_with_endless_patience_is_erlang_c() -> None:
    load = Load(arrivals_per_hour=200, handle_seconds=180, librarians=11, capacity=1, patience_seconds=1e9)
    a, c = erlang_a(load), predict(Load(200, 180, 11, 1))
    assert a.waits == pytest.approx(c.waits, abs=1e-4)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-3)
    assert a.wait_p50 == pytest.approx(c.wait_p50, abs=2)
    assert a.wait_p90 == pytest.approx(c.wait_p90, abs=2)


def test_an_overloaded_hour_has_finite_waits_because_patrons_give_up() -> None:
    found = predict(Load(arrivals_per_hour=40, handle_seconds=900, librarians=1, capacity=3, patience_seconds=240))
    assert found.model == "erlang_a"
    assert 0 < found.wait_p50 < found.wait_p90 < 3600
    assert 0 < found.service_level < 0.5
    assert found.occupancy > 0.9


def test_nobody_there_and_nobody_coming() -> None:
    assert predict(Load(arrivals_per_hour=3, handle_seconds=600, librarians=0, capacity=3)).model == "unstaffed"
    quiet = predict(Load(arrivals_per_hour=0, handle_seconds=600, librarians=2, capacity=3))
    assert (quiet.model, quiet.wait_p90, quiet.service_level) == ("idle", 0.0, 1.0)


def test_the_launchers_wait_for_a_patron_behind_others() -> None:
    assert conditional_wait(0, 6, 600) == 100
    assert conditional_wait(2, 6, 600) == 300
    assert conditional_wait(0, 0, 600) == math.inf
