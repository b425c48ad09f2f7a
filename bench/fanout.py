"""Fan-out: the dashboard with a delay injected on the database side of each source, against
the same selectors run one after another.

Each PostgreSQL source sleeps in the database before its statement (``SELECT pg_sleep(d)`` on
the same connection, from an execute wrapper installed for the benchmark only): users_db 0.10 s,
default 0.20 s, analytics_db 0.30 s (change with --delays). Concurrent should cost about the
slowest source; sequential costs the sum. Target: concurrent <= 1.3 x the slowest delay.
Run: bench/fanout.sh [--runs 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from typing import Any

import django

django.setup()

from django.db import connections  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.utils import timezone  # noqa: E402

from core import aliases  # noqa: E402
from core.services import cached, dashboard  # noqa: E402
from routers import state  # noqa: E402

DELAYS: dict[str, float] = {}


def delay_in_database(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    seconds = DELAYS.get(context["connection"].alias)
    if seconds:
        # On the driver's connection: the sleep happens in the database, before the statement.
        context["connection"].connection.execute("SELECT pg_sleep(%s)", [seconds])
    return execute(sql, params, many, context)


def install(sender: Any, connection: Any, **kwargs: Any) -> None:
    if delay_in_database not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, delay_in_database)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--delays", default="0.10,0.20,0.30", help="users_db,default,analytics_db seconds")
    args = parser.parse_args()
    d_users, d_default, d_analytics = (float(x) for x in args.delays.split(","))
    connection_created.connect(install, dispatch_uid="bench-delay")
    for alias in connections:
        install(None, connections[alias])
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
            dashboard.fetch_user(uid, aliases.USERS)
            dashboard.fetch_recent_posts(uid, aliases.DEFAULT)
            dashboard.fetch_event_counts(uid, since, aliases.ANALYTICS)
            dashboard.fetch_cached_stats(uid, cached.source_name())

    def timed(fn: Any) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    DELAYS.clear()
    base_conc = statistics.median(timed(concurrent) for _ in range(20))
    base_seq = statistics.median(timed(sequential) for _ in range(20))
    DELAYS.update({aliases.USERS: d_users, aliases.DEFAULT: d_default, aliases.ANALYTICS: d_analytics})
    conc = [timed(concurrent) for _ in range(args.runs)]
    seq = [timed(sequential) for _ in range(args.runs)]
    slowest, total = max(d_users, d_default, d_analytics), d_users + d_default + d_analytics
    c, s = statistics.median(conc), statistics.median(seq)
    print(f"fan-out: dashboard, delays in the database users_db {d_users}s, default {d_default}s, "
          f"analytics_db {d_analytics}s; median of {args.runs}; shared 2-core machine")
    print(f"  without delays: concurrent {base_conc * 1000:.1f} ms, sequential {base_seq * 1000:.1f} ms")
    print(f"  concurrent (fan-out)   {c * 1000:7.1f} ms = {c / slowest:.2f} x the slowest source "
          f"({slowest * 1000:.0f} ms)  target <= 1.30 x: {'ok' if c / slowest <= 1.3 else 'MISSED'}")
    print(f"  sequential (same SQL)  {s * 1000:7.1f} ms = {s / total:.2f} x the sum ({total * 1000:.0f} ms); "
          f"concurrent/sequential = {c / s:.2f}")


if __name__ == "__main__":
    main()
