"""Fan-out: the dashboard with a delay injected on the database side of each source, against
the same selectors run one after another.

Each PostgreSQL source sleeps in the database before its statement: the benchmark creates, in
each source's database, a schema ``bench_delay`` with a view named like the table the dashboard
reads (``SELECT * FROM public.<table> WHERE (SELECT pg_sleep(d)) IS NOT NULL``) and puts it first
on this process's ``search_path`` (``PGOPTIONS``), so every way of sending the statement sees the
delay, whatever client path the fan-out takes. users_db 0.10 s, default 0.20 s, analytics_db
0.30 s (change with --delays). Concurrent should cost about the slowest source; sequential costs
the sum. Target: concurrent <= 1.3 x the slowest delay. The schema is dropped at the end.
Run: bench/fanout.sh [--runs 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import time
from typing import Any

os.environ["PGOPTIONS"] = "-c search_path=bench_delay,public"

import django

django.setup()

import psycopg
from django.conf import settings
from django.db import connections
from django.utils import timezone

from core import aliases
from core.services import dashboard
from routers import state

#: The table each delayed source's dashboard statement reads.
TABLES = {aliases.USERS: "users_user", aliases.DEFAULT: "blog_post", aliases.ANALYTICS: "analytics_event"}


def admin_connection(alias: str) -> psycopg.Connection:
    db = settings.DATABASES[alias]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname=db["NAME"],
        autocommit=True,
        options="-c search_path=public",
    )


def set_delays(delays: dict[str, float]) -> None:
    """(Re)create each source's delaying view with its delay (0: no sleep)."""
    for alias, table in TABLES.items():
        with admin_connection(alias) as conn:
            conn.execute("CREATE SCHEMA IF NOT EXISTS bench_delay")
            conn.execute(
                f"CREATE OR REPLACE VIEW bench_delay.{table} AS SELECT * FROM public.{table} "
                f"WHERE (SELECT pg_sleep({float(delays.get(alias, 0.0))})) IS NOT NULL"
            )


def drop_delays() -> None:
    for alias in TABLES:
        with admin_connection(alias) as conn:
            conn.execute("DROP SCHEMA IF EXISTS bench_delay CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--delays", default="0.10,0.20,0.30", help="users_db,default,analytics_db seconds")
    args = parser.parse_args()
    d_users, d_default, d_analytics = (float(x) for x in args.delays.split(","))
    set_delays({})
    try:
        run(args, d_users, d_default, d_analytics)
    finally:
        connections.close_all()
        drop_delays()


def run(args: argparse.Namespace, d_users: float, d_default: float, d_analytics: float) -> None:
    rnd = random.Random(11)
    with connections[aliases.USERS].cursor() as cursor:
        cursor.execute("SELECT max(id) FROM users_user")
        max_user = cursor.fetchone()[0]

    def concurrent() -> None:
        with state.isolated():
            answer = dashboard.user_dashboard(user_id=rnd.randint(1, max_user))
        assert answer["degraded"] == [], answer["degraded"]

    def sequential() -> None:
        uid = rnd.randint(1, max_user)
        since = timezone.now() - dt.timedelta(days=dashboard.ANALYTICS_DAYS)
        with state.isolated():
            dashboard.fetch_user(uid).run()
            dashboard.fetch_recent_posts(uid).run()
            dashboard.fetch_event_counts(uid, since).run()
            dashboard.fetch_cached_stats(uid).run()

    def timed(fn: Any) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    base_conc = statistics.median(timed(concurrent) for _ in range(20))
    base_seq = statistics.median(timed(sequential) for _ in range(20))
    set_delays({aliases.USERS: d_users, aliases.DEFAULT: d_default, aliases.ANALYTICS: d_analytics})
    conc = [timed(concurrent) for _ in range(args.runs)]
    seq = [timed(sequential) for _ in range(args.runs)]
    slowest, total = max(d_users, d_default, d_analytics), d_users + d_default + d_analytics
    c, s = statistics.median(conc), statistics.median(seq)
    print(
        f"fan-out: dashboard, delays in the database users_db {d_users}s, default {d_default}s, "
        f"analytics_db {d_analytics}s; median of {args.runs}; shared 2-core machine"
    )
    print(f"  without delays: concurrent {base_conc * 1000:.1f} ms, sequential {base_seq * 1000:.1f} ms")
    print(
        f"  concurrent (fan-out)   {c * 1000:7.1f} ms = {c / slowest:.2f} x the slowest source "
        f"({slowest * 1000:.0f} ms)  target <= 1.30 x: {'ok' if c / slowest <= 1.3 else 'MISSED'}"
    )
    print(
        f"  sequential (same SQL)  {s * 1000:7.1f} ms = {s / total:.2f} x the sum ({total * 1000:.0f} ms); "
        f"concurrent/sequential = {c / s:.2f}"
    )


if __name__ == "__main__":
    main()
