"""Analytics at 1,000,000 and 10,000,000 events (issue 14), in process, on the bench databases.

Phases (run by bench/analytics_scale.sh, which seeds between them):
- ``measure LABEL``: median and spread (p10-p90) of the uncached ``/stats/`` computation, the
  events summary, the dashboard, the first page and a page 100,000 events deep of the events list
  (the last four through the API in process: middleware, authentication, serialisation).
- ``convert``: the table back to a plain one, then ``analytics_partitions --convert`` timed.
- ``retention``: a month of 1,000,000 events removed by the old batched row delete (plain table)
  and by the partition drop (partitioned table).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

import django

django.setup()

from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone

from api.pagination import TimestampCursorPagination
from core import aliases
from core.analytics import partitions, rollups
from core.analytics.models import AnalyticsEvent
from core.services import maintenance, stats
from routers import state

TOKEN = Path(os.environ.get("SWITCHYARD_VAR_DIR", "var/bench"), "token").read_text().strip()


def timings(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(3):
        fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def spread(values: list[float]) -> str:
    q = statistics.quantiles(values, n=10)
    return f"{statistics.median(values):8.2f} ms  (p10 {q[0]:.2f}, p90 {q[-1]:.2f}, n={len(values)})"


def sql(alias: str, text: str, params: list | None = None) -> list[tuple]:
    with connections[alias].cursor() as cursor:
        cursor.execute(text, params or [])
        return cursor.fetchall() if cursor.description else []


def measure(label: str, runs: int) -> None:
    import logging

    logging.getLogger("switchyard.access").disabled = True  # one log line per request: not wanted here
    client = Client(HTTP_AUTHORIZATION=f"Token {TOKEN}")
    events = sql(aliases.ANALYTICS, "SELECT COUNT(*) FROM analytics_event")[0][0]
    max_user = sql(aliases.USERS, "SELECT MAX(id) FROM users_user")[0][0]
    rnd = random.Random(1)
    deep = sql(
        aliases.ANALYTICS,
        'SELECT "timestamp", id FROM analytics_event ORDER BY "timestamp" DESC, id DESC OFFSET 100000 LIMIT 1',
    )[0]
    cursor = TimestampCursorPagination._encode(deep[0], deep[1], False)

    def get(path: str):  # type: ignore[no-untyped-def]
        def run() -> None:
            with state.isolated():
                response = client.get(path.replace("{id}", str(rnd.randint(1, max_user))))
            assert response.status_code == 200, (path, response.status_code, response.content[:300])

        return run

    def stats_uncached() -> None:
        with state.isolated():
            stats.compute_stats()

    def stats_events_part() -> None:
        stats._events(timezone.now(), aliases.ANALYTICS)

    print(f"== {label}: {events} events, partitioned={partitions.is_partitioned(connections[aliases.ANALYTICS])}")
    for name, fn, n in (
        ("stats (uncached computation)", stats_uncached, runs),
        ("stats: its analytics_db part", stats_events_part, runs),
        ("events summary", get("/api/v1/analytics/events/summary/"), runs),
        ("events summary, one user", get("/api/v1/analytics/events/summary/?user_id={id}"), runs),
        ("dashboard", get("/api/v1/users/{id}/dashboard/"), runs),
        ("events list, first page", get("/api/v1/analytics/events/"), runs),
        ("events list, 100,000 deep", get(f"/api/v1/analytics/events/?cursor={cursor}"), runs),
    ):
        print(f"{label:>4} {name:<32}{spread(timings(fn, n))}", flush=True)


def convert() -> None:
    started = time.perf_counter()
    rows = partitions.to_plain(using=aliases.ANALYTICS)
    with connections[aliases.ANALYTICS].cursor() as cursor:
        for statement in rollups.pg_drop_triggers_sql() + rollups.pg_create_triggers_sql():
            cursor.execute(statement)
        cursor.execute("VACUUM ANALYZE analytics_event")
    print(f"(set-up: {rows} rows back into a plain table in {time.perf_counter() - started:.1f}s)")
    report = partitions.convert(
        using=aliases.ANALYTICS,
        batch_size=50_000,
        now=timezone.now(),
        progress=lambda text: print(f"  {text}", flush=True),
    )
    print(
        f"conversion of {report.rows} rows: {report.seconds:.1f}s total (copy {report.copy_seconds:.1f}s in "
        f"{report.batches} batches, indexes {report.index_seconds:.1f}s, locked swap {report.swap_seconds:.2f}s)"
    )
    sql(aliases.ANALYTICS, "VACUUM ANALYZE analytics_event")


def retention() -> None:
    from bench.seed_bench import seed_events

    now = timezone.now()
    month = partitions.add_months(partitions.month_start(now), -5)
    days = (partitions.add_months(month, 1) - month).days
    cutoff = partitions.bound(partitions.add_months(month, 1))

    def one_month_of_events() -> None:
        seed_events(0, 10, rebuild=False)
        sql(aliases.ANALYTICS, "ALTER TABLE analytics_event DISABLE TRIGGER USER")
        sql(
            aliases.ANALYTICS,
            "INSERT INTO analytics_event (event_type, user_id, session_id, timestamp, data) "
            "SELECT 'page_view', 1 + g %% 10000, '', %s + (g %% (%s * 86400)) * interval '1 second', '{}' "
            "FROM generate_series(1, 1000000) AS g",
            [partitions.bound(month), days],
        )
        sql(aliases.ANALYTICS, "ALTER TABLE analytics_event ENABLE TRIGGER USER")
        for statement in rollups.rebuild_sql("postgresql"):
            sql(aliases.ANALYTICS, statement)
        sql(aliases.ANALYTICS, "VACUUM ANALYZE analytics_event")

    age = (now - cutoff).days
    batch = settings.DBMAINT_BATCH_SIZE
    # before: the plain table and the old batched row delete
    partitions.to_plain(using=aliases.ANALYTICS)
    with connections[aliases.ANALYTICS].cursor() as cursor:
        for statement in rollups.pg_drop_triggers_sql() + rollups.pg_create_triggers_sql():
            cursor.execute(statement)
    for triggers in (False, True):
        one_month_of_events()
        if not triggers:  # the code before issue 14: no rollups
            sql(aliases.ANALYTICS, "ALTER TABLE analytics_event DISABLE TRIGGER USER")
        started = time.perf_counter()
        report = maintenance._batched_delete(AnalyticsEvent, {"timestamp__lt": cutoff}, aliases.ANALYTICS, batch, None)
        before = time.perf_counter() - started
        sql(aliases.ANALYTICS, "ALTER TABLE analytics_event ENABLE TRIGGER USER")
        started = time.perf_counter()
        sql(aliases.ANALYTICS, "VACUUM analytics_event")
        vacuum = time.perf_counter() - started
        what = "rollups subtracted by the triggers" if triggers else "no rollup triggers, as before issue 14"
        print(
            f"retention before (plain table, batched DELETE of {batch} rows, {what}): "
            f"{report.count} events in {before:.1f}s, then VACUUM {vacuum:.1f}s",
            flush=True,
        )
    # after: partitioned, the month dropped whole
    partitions.convert(using=aliases.ANALYTICS, now=now)
    partitions.ensure_ahead(using=aliases.ANALYTICS, ahead=8, now=partitions.bound(month))
    one_month_of_events()
    started = time.perf_counter()
    report = maintenance.analytics_cleanup(days=age, batch_size=batch)
    after = time.perf_counter() - started
    print(
        f"retention after (partition detached and dropped): {report.count} events in {after:.2f}s "
        f"({report.detail}; {report.batches} row batches)"
    )


if __name__ == "__main__":
    phase = sys.argv[1]
    if phase == "measure":
        measure(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 30)
    elif phase == "convert":
        convert()
    elif phase == "retention":
        retention()
