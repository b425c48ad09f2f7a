"""Ingest: ``POST /api/v1/analytics/events/batch/`` with 10,000 events per request against raw
``COPY`` of the same rows through psycopg. Target: the API reaches >= 30% of COPY's rows/s.

Needs a running server (bench/ingest.sh starts gunicorn like bench/throughput.sh). When the
endpoint is not there (another branch delivers it), prints so and measures COPY only. The rows
it adds are deleted afterwards, so the bench data stays at its seeded size.
Run: bench/ingest.sh [--requests 5] [--batch 10000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import time
from typing import Any

import django

django.setup()

import psycopg
from django.conf import settings

from core import aliases

TYPES = ("page_view", "click", "login", "logout", "purchase", "search")


def make_events(n: int, rnd: random.Random) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "event_type": rnd.choice(TYPES),
            "user_id": rnd.randint(1, 10_000),
            "session_id": f"bench-{rnd.randint(1, 10**9)}",
            "timestamp": (now - dt.timedelta(seconds=rnd.randint(0, 86_400))).isoformat().replace("+00:00", "Z"),
            "data": {"path": f"/p/{rnd.randint(1, 500)}", "ms": rnd.randint(1, 900)},
        }
        for _ in range(n)
    ]


def pg_connect() -> psycopg.Connection:
    db = settings.DATABASES[aliases.ANALYTICS]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=db["NAME"],
        password=db["PASSWORD"] or None,
        autocommit=True,
    )


def copy_rows(conn: psycopg.Connection, events: list[dict[str, Any]]) -> None:
    with conn.transaction(), conn.cursor() as cursor:
        with cursor.copy("COPY analytics_event (event_type, user_id, session_id, timestamp, data) FROM STDIN") as copy:
            for e in events:
                copy.write_row((e["event_type"], e["user_id"], e["session_id"], e["timestamp"], json.dumps(e["data"])))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default=f"127.0.0.1:{os.environ.get('BENCH_PORT', '8765')}")
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    with open(os.path.join(os.environ.get("SWITCHYARD_VAR_DIR", "var/bench"), "token")) as fh:
        token = fh.read().strip()
    rnd = random.Random(5)
    batches = [make_events(args.batch, rnd) for _ in range(args.requests)]
    conn = pg_connect()
    first_new = conn.execute("SELECT COALESCE(max(id), 0) + 1 FROM analytics_event").fetchone()[0]
    print(f"ingest: {args.requests} x {args.batch} events; shared 2-core machine")
    try:
        copy_rows(conn, batches[0])  # warm-up
        started = time.perf_counter()
        for batch in batches:
            copy_rows(conn, batch)
        copy_rate = args.requests * args.batch / (time.perf_counter() - started)
        print(f"  COPY through psycopg (reference)   {copy_rate:12,.0f} rows/s")

        host, _, port = args.base.partition(":")
        client = http.client.HTTPConnection(host, int(port or 80), timeout=120)
        headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        bodies = [json.dumps({"events": batch}) for batch in batches]
        client.request("POST", "/api/v1/analytics/events/batch/", body=bodies[0], headers=headers)
        response = client.getresponse()
        answer = response.read()
        if response.status == 404:
            print("  POST /api/v1/analytics/events/batch/ answers 404 on this branch: not measured")
            return
        if response.status != 201:
            print(f"  POST answered {response.status}: {answer[:300]!r}; not measured")
            return
        started = time.perf_counter()
        for body in bodies:
            client.request("POST", "/api/v1/analytics/events/batch/", body=body, headers=headers)
            response = client.getresponse()
            response.read()
            assert response.status == 201, response.status
        api_rate = args.requests * args.batch / (time.perf_counter() - started)
        print(
            f"  POST .../events/batch/ (API)        {api_rate:12,.0f} rows/s = {api_rate / copy_rate:.0%} of COPY"
            f"  target >= 30%: {'ok' if api_rate / copy_rate >= 0.3 else 'MISSED'}"
        )
    finally:
        conn.execute("DELETE FROM analytics_event WHERE id >= %s", [first_new])
        conn.close()


if __name__ == "__main__":
    main()
