"""The durable floor of bench/ws_load.py --store-floor (bench/bare_relay.py --store): the relay that
stores every line before publishing it. Its CPU per message is the figure docs/benchmarks.md sets the
stack's against, so it must really keep every line, in order, and leave no database behind."""

from __future__ import annotations

import argparse
import asyncio

import psycopg


def test_the_durable_floor_stores_every_line_in_order_and_drops_its_database() -> None:
    from bench import ws_load  # the load generator, used as a library

    args = argparse.Namespace(
        chats=20, webs=2, interval=2.0, duration=5.0, ramp_rate=20.0, probe_rate=0.0, libraries=5,
        chats_per_librarian=10, capacity=20, idle_staff=None, connect_timeout=60.0, drain=30.0, seed=4,
        stack_env=[])
    plan = ws_load.make_plan(args)
    target = ws_load.StoredBareTarget(args, plan)
    dbname = target.dbname
    try:
        result = asyncio.run(ws_load.drive(target, plan, args))
        with psycopg.connect(ws_load._database_url(dbname)) as conn:
            stored = conn.execute("SELECT chat_id, seq, body FROM bare_message ORDER BY chat_id, seq").fetchall()
            chats = dict(conn.execute("SELECT id, last_seq FROM bare_chat").fetchall())
        pids = target.database_pids()
    finally:
        target.stop()

    steady = result["steady"]
    assert steady["lost_patron_to_librarian"] == 0 and steady["lost_librarian_to_patron"] == 0, steady
    assert result["seq"] == {"repeated": 0, "skipped": 0, "duplicate_messages": 0}
    # Every line sent in the steady state is a row (the ramp sends none), and each chat's seqs run 1..n.
    assert len(stored) == steady["sent_by_patrons"] + steady["sent_by_librarians"] > 0
    assert len(chats) == 20
    by_chat: dict[str, list[int]] = {}
    for chat_id, seq, _body in stored:
        by_chat.setdefault(chat_id, []).append(seq)
    for chat_id, seqs in by_chat.items():
        assert seqs == list(range(1, len(seqs) + 1)) and chats[chat_id] == len(seqs)
    # Its database's backends are what the floor's "database" CPU counts.
    assert pids
    with psycopg.connect(ws_load._database_url("postgres")) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone() is None
