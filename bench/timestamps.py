#!/usr/bin/env python
"""CPU per timestamptz value read from PostgreSQL: Django's loader (psycopg's Python loader with the
tzinfo replaced) against psycopg's C loader, as consortium/timestamps.py registers it. Both read
the same rows of the same query, alternately, on one connection.

    .venv/bin/python bench/timestamps.py [--rows 20000] [--rounds 5]

Needs DATABASE_URL (PostgreSQL). The figures are in docs/benchmarks.md (session 25).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from django.db.backends.postgresql.psycopg_any import register_tzloader

from consortium.timestamps import TIMESTAMPTZ_OID, UtcTimestamptzLoader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("DATABASE_URL must name a PostgreSQL database")
    sql = ("SELECT now() + (g || ' seconds')::interval, now() - (g || ' ms')::interval "
           "FROM generate_series(1, %s) AS g")
    values = args.rows * 2
    per_value: dict[str, list[float]] = {"django": [], "c": []}
    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        django_cursor, c_cursor = conn.cursor(), conn.cursor()
        register_tzloader(datetime.UTC, django_cursor)
        c_cursor.adapters.register_loader(TIMESTAMPTZ_OID, UtcTimestamptzLoader)  # type: ignore[arg-type]
        for _ in range(args.rounds):
            for name, cursor in (("django", django_cursor), ("c", c_cursor)):
                cursor.execute(sql, [args.rows])
                started = time.process_time()
                rows = cursor.fetchall()
                per_value[name].append((time.process_time() - started) / values * 1e6)
                assert len(rows) == args.rows
    for name, found in per_value.items():
        print(f"{name:7s} median {statistics.median(found):6.2f} us a value "
              f"(rounds: {', '.join(f'{x:.2f}' for x in found)})")
    print(f"ratio {statistics.median(per_value['django']) / statistics.median(per_value['c']):.1f}x")


if __name__ == "__main__":
    main()
