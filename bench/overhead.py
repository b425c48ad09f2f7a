"""Overhead: each aggregate in process against the same SQL run directly through the drivers.

For the dashboard and stats (targets: <= 2x) and the other aggregates (reported), it times the
service function (fan-out, routing, budgets, joins, dict building) and, as the reference, the
same statements sent one after another through psycopg / MySQLdb / sqlite3 on connections opened
once, fetching all rows. Median of N runs after a warm-up, on the bench databases
(bench/seed.sh). Run: bench/overhead.sh [--runs 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import statistics
import time
from collections.abc import Callable
from typing import Any

import django

django.setup()

import MySQLdb
import psycopg
from django.conf import settings
from django.utils import timezone

from core import aliases
from core.analytics.selectors import counts_query
from core.blog.selectors import recent_posts_statement, top_authors_statement
from core.services import activity, cached, dashboard, reports, stats
from core.users.selectors import user_statement
from routers import state


def connect_direct() -> dict[str, Any]:
    conns: dict[str, Any] = {}
    for alias in (aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS):
        db = settings.DATABASES[alias]
        conns[alias] = psycopg.connect(
            host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"], autocommit=True
        )
    db = settings.DATABASES[aliases.LEGACY]
    conns[aliases.LEGACY] = MySQLdb.connect(
        host=db["HOST"], port=int(db["PORT"] or 3306), user=db["USER"], passwd=db["PASSWORD"] or "", db=db["NAME"]
    )
    conns[aliases.CACHE] = sqlite3.connect(settings.DATABASES[aliases.CACHE]["NAME"])
    return conns


def direct(conns: dict[str, Any], statements: list[tuple[str, str, list[Any]]]) -> None:
    for alias, sql, params in statements:
        conn = conns[alias]
        if alias == aliases.CACHE:
            conn.execute(sql.replace("%s", "?"), params).fetchall()
        elif alias == aliases.LEGACY:
            cursor = conn.cursor()
            cursor.execute(sql, params)
            cursor.fetchall()
        else:
            conn.execute(sql, params).fetchall()


def paired_medians(ours: Callable[[], Any], reference: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median milliseconds of both, run alternately so that both see the same machine load."""
    for _ in range(max(3, runs // 10)):
        ours()
        reference()
    mine, theirs = [], []
    for _ in range(runs):
        started = time.perf_counter()
        ours()
        mine.append(time.perf_counter() - started)
        started = time.perf_counter()
        reference()
        theirs.append(time.perf_counter() - started)
    return statistics.median(mine) * 1000, statistics.median(theirs) * 1000


def median_ms(fn: Callable[[], Any], runs: int) -> float:
    for _ in range(max(3, runs // 10)):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--token-lookup", action="store_true", help="the caller holds a connection on default, as after a token lookup"
    )
    args = parser.parse_args()
    conns = connect_direct()
    rnd = random.Random(7)
    max_user = conns[aliases.USERS].execute("SELECT max(id) FROM users_user").fetchone()[0]
    cache_table = settings.CACHES["default"].get("LOCATION")
    now = timezone.now()

    def ids() -> int:
        return rnd.randint(1, max_user)

    def in_request(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with state.isolated():
                return fn()

        return run

    # As in a request whose token was remembered (api/authentication.py), the calling thread holds
    # no connection: every part goes to the fan-out's threads. With --token-lookup the caller holds
    # one on default first, as after a token lookup (the fan-out then runs the default part on it).
    from django.db import connections as django_connections

    if args.token_lookup:
        django_connections[aliases.DEFAULT].ensure_connection()

    # Statements as the services send them (the same SQL text and parameters).
    def dashboard_sql() -> list[tuple[str, str, list[Any]]]:
        uid = ids()
        return [
            (aliases.USERS, *user_statement(aliases.USERS, user_id=uid)),
            (aliases.DEFAULT, *recent_posts_statement(aliases.DEFAULT, author_id=uid, limit=dashboard.RECENT_POSTS)),
            (aliases.ANALYTICS, *dashboard_events(uid)),
            (
                aliases.CACHE,
                f'SELECT cache_key, value, expires FROM "{cache_table}" WHERE cache_key IN (%s)',
                [f":1:{cached.user_stats_key(uid)}"],
            ),
        ]

    def dashboard_events(uid: int) -> tuple[str, list[Any]]:
        return counts_query(aliases.ANALYTICS, {"w": (now - dt.timedelta(days=30), None)}, user_id=uid, labelled=False)

    def stats_sql() -> list[tuple[str, str, list[Any]]]:
        return [
            (aliases.USERS, "SELECT COUNT(*) FROM users_user", []),
            (aliases.DEFAULT, *top_authors_statement(aliases.DEFAULT, limit=stats.TOP_AUTHORS)),
            (
                aliases.ANALYTICS,
                *counts_query(
                    aliases.ANALYTICS, {"total": (None, None), **{n: (now - d, None) for n, d in stats.WINDOWS}}
                ),
            ),
            (aliases.LEGACY, "SELECT COUNT(*) FROM customers", []),
            (aliases.CACHE, "SELECT COUNT(*) FROM cache_entry", []),
            (aliases.USERS, "SELECT id, username FROM users_user WHERE id = ANY(%s)", [list(range(1, 11))]),
        ]

    print(
        f"overhead: median of {args.runs} runs (after warm-up), service and reference alternating, "
        "in process; shared 2-core machine"
    )
    print(f"{'aggregate':<28}{'service ms':>12}{'direct SQL ms':>15}{'ratio':>8}  target")
    rows = [
        (
            "dashboard",
            in_request(lambda: dashboard.user_dashboard(user_id=ids())),
            lambda: direct(conns, dashboard_sql()),
            args.runs,
        ),
        (
            "stats (uncached)",
            in_request(lambda: stats.compute_stats()),
            lambda: direct(conns, stats_sql()),
            max(10, args.runs // 20),
        ),
    ]
    for name, service, reference, runs in rows:
        ours, ref = paired_medians(service, reference, runs)
        verdict = "ok" if ours / ref <= 2.0 else "MISSED"
        print(f"{name:<28}{ours:>12.2f}{ref:>15.2f}{ours / ref:>7.2f}x  <= 2.0x {verdict}")
    # The others, reported without a target.
    for name, fn in (
        ("users activity (30 d, 20)", in_request(lambda: activity.recent_users_activity(days=30))),
        ("new-user report (7 d)", in_request(lambda: reports.new_user_activity())),
    ):
        print(f"{name:<28}{median_ms(fn, max(10, args.runs // 10)):>12.2f}{'-':>15}{'-':>8}")


if __name__ == "__main__":
    main()
