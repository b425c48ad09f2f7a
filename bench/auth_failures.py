#!/usr/bin/env python3
"""Refused keys against a served instance, beside ``/health`` in the same rounds (run by hand):

    bench/auth_failures.sh                                   # per-process memory, 1 worker
    CACHE_URL=redis://127.0.0.1:6379/3 WEB_CONCURRENCY=2 bench/auth_failures.sh   # shared through Redis

gunicorn (``gunicorn.conf.py``, ``BIND`` 127.0.0.1:``AUTH_BENCH_PORT``, 18620 by default) serves
the service on the real databases of ``bench/common.sh``. Then:

1. **first sight**: ``--keys`` (10,000) random ``swy_`` keys, each sent once (``GET
   /api/v1/users/`` with ``Authorization: Token <key>``): each is looked up once;
2. **rounds** (``--rounds``, 5): ``/health`` and the refused keys again (a random one of the
   10,000 per request), ``--per-round`` requests each, from ``--clients`` keep-alive connections
   (one client process each), the order of the two alternating from round to round.

For each kind: requests a second (median of the rounds and their min-max), p50 and p99 of the
latency (over every request of the rounds), the statuses, and how many answers touched a database:
an answer whose query touched any alias carries ``Server-Timing`` (api.middleware), so an answer
without it made no query on any alias. The failure budget is set out of reach here
(``API_AUTH_FAILURE_RATE=1000000000/minute``) so that the path itself is measured.

3. **the default budget** (``--budget-check``, on by default): the instance restarted with
   ``API_AUTH_FAILURE_RATE`` unset (60/minute), ``--budget-requests`` (200) fresh random keys from one
   address: how many 401s before the first 429, the 429's ``Retry-After`` and ``RateLimit``, and
   how many of the 429s touched a database.

The report is printed and written to ``var/auth-failures/auth-failures-<time>.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("AUTH_BENCH_PORT", "18620"))
PATH = "/api/v1/users/?page_size=1"


def log(message: str) -> None:
    print(f"==> auth_failures: {message}", file=sys.stderr, flush=True)


def random_key(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "swy_" + "".join(rng.choice(alphabet) for _ in range(40))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _client(job: tuple[str, list[str], int]) -> dict[str, Any]:
    """One keep-alive connection sending ``count`` requests: ``kind`` "health" or "refused" (one
    of ``keys`` each, in order when ``keys`` has ``count`` of them, else at random)."""
    kind, keys, count = job
    rng = random.Random()
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    touched: dict[str, int] = {}
    samples: dict[str, str] = {}
    for i in range(count):
        if kind == "health":
            path, headers = "/health", {}
        else:
            key = keys[i] if len(keys) == count else rng.choice(keys)
            path, headers = PATH, {"Authorization": f"Token {key}"}
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        if response.getheader("Server-Timing"):
            touched[str(response.status)] = touched.get(str(response.status), 0) + 1
        if response.status in (401, 429) and str(response.status) not in samples:
            samples[str(response.status)] = json.dumps(
                {h: response.getheader(h) for h in ("Retry-After", "RateLimit-Policy", "RateLimit", "Server-Timing")}
            )
    conn.close()
    return {"latencies": latencies, "statuses": statuses, "touched": touched, "samples": samples}


def burst(pool: Any, kind: str, keys: list[str], total: int, clients: int, spread: bool = False) -> dict[str, Any]:
    """``total`` requests from ``clients`` connections at once; ``spread``: each key once."""
    share = total // clients
    if spread:
        jobs = [(kind, keys[i * share : (i + 1) * share], share) for i in range(clients)]
    else:
        jobs = [(kind, keys, share) for _ in range(clients)]
    started = time.perf_counter()
    parts = pool.map(_client, jobs)
    wall = time.perf_counter() - started
    latencies = [x for p in parts for x in p["latencies"]]
    statuses: dict[str, int] = {}
    for p in parts:
        for status, n in p["statuses"].items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    samples: dict[str, str] = {}
    for p in parts:
        samples.update(p["samples"])
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "latencies": latencies,
        "statuses": statuses,
        "touched_a_database": sum(n for p in parts for n in p["touched"].values()),
        "samples": samples,
    }


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [x for r in results for x in r["latencies"]]
    rates = [r["rps"] for r in results]
    statuses: dict[str, int] = {}
    for r in results:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    requests = sum(r["requests"] for r in results)
    return {
        "requests": requests,
        "rps_median": round(statistics.median(rates), 1),
        "rps_min_max": [round(min(rates), 1), round(max(rates), 1)],
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "statuses": statuses,
        "answers_that_touched_a_database": sum(r["touched_a_database"] for r in results),
        "queries_per_request_at_most": "0 (no Server-Timing on any answer)"
        if not sum(r["touched_a_database"] for r in results)
        else "some answers queried",
    }


class Instance:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Instance:
        out = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=out,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"gunicorn did not answer on {PORT}; see {self.log_path}")

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=4_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--budget-requests", type=int, default=200)
    parser.add_argument("--no-budget-check", dest="budget_check", action="store_false")
    args = parser.parse_args()

    out_dir = ROOT / "var" / "auth-failures"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = out_dir / f"gunicorn-{stamp}.log"
    base = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "BIND": f"127.0.0.1:{PORT}",
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "1"),
        "GUNICORN_THREADS": os.environ.get("GUNICORN_THREADS", "4"),
        "LOG_LEVEL": "WARNING",
        # every refused key stays remembered through the whole run
        "API_REFUSED_TOKEN_SECONDS": os.environ.get("API_REFUSED_TOKEN_SECONDS", "3600"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate_all"], cwd=ROOT, env=base, check=True, stdout=subprocess.DEVNULL
    )
    rng = random.Random()
    keys = [random_key(rng) for _ in range(args.keys)]
    report: dict[str, Any] = {
        "when": stamp,
        "gunicorn": f"{base['WEB_CONCURRENCY']} worker(s) x {base['GUNICORN_THREADS']} threads",
        "shared_cache": os.environ.get("CACHE_URL") or "none (per-process memory)",
        "keys": args.keys,
        "clients": args.clients,
        "load_average_before": os.getloadavg(),
    }
    pool = multiprocessing.get_context("fork").Pool(args.clients)
    try:
        with Instance({**base, "API_AUTH_FAILURE_RATE": "1000000000/minute"}, log_path):
            log(f"first sight of {args.keys} keys")
            first = burst(pool, "refused", keys, args.keys, args.clients, spread=True)
            report["first_sight"] = {**summary([first]), "samples": first["samples"]}
            health_runs, refused_runs = [], []
            for n in range(args.rounds):
                order = ("health", "refused") if n % 2 == 0 else ("refused", "health")
                for kind in order:
                    result = burst(pool, kind, keys, args.per_round, args.clients)
                    (health_runs if kind == "health" else refused_runs).append(result)
                log(
                    f"round {n + 1}: /health {health_runs[-1]['rps']:.0f} req/s, "
                    f"refused {refused_runs[-1]['rps']:.0f} req/s"
                )
            report["health"] = summary(health_runs)
            report["refused_again"] = {**summary(refused_runs), "samples": refused_runs[-1]["samples"]}
        if args.budget_check:
            env = {k: v for k, v in base.items() if k != "API_AUTH_FAILURE_RATE"}
            with Instance(env, log_path):
                log(f"the default failure budget: {args.budget_requests} fresh keys from one address")
                fresh = [random_key(rng) for _ in range(args.budget_requests)]
                result = _client(("refused", fresh, len(fresh)))
                report["default_budget"] = {
                    "statuses": result["statuses"],
                    "answers_that_touched_a_database_by_status": result["touched"],
                    "samples": result["samples"],
                }
    finally:
        pool.close()
        pool.join()
    report["load_average_after"] = os.getloadavg()
    path = out_dir / f"auth-failures-{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    log(f"report: {path}")


if __name__ == "__main__":
    main()
