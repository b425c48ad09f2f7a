#!/usr/bin/env python3
"""Faults under load: gunicorn serving mixed reads and writes while databases go away.

    bench/faults.sh              # 20 s per phase (about 2.5 minutes)
    bench/faults.sh --short      # the CI form: 4 s per phase (about 40 s)

What it does, on loopback only, as root on the development/CI machine:

1. Databases, all on throwaway servers of the drill's own, so that stopping them disturbs nothing
   else on the machine: default and users_db on a PostgreSQL primary (port 5440) with its own
   streaming replica (5441, pg_basebackup -R, rebuilt every run); analytics_db on a cluster of its
   own (5442) so that it can be stopped alone; legacy_db on a mariadbd of its own (3310, own
   datadir and socket). Fresh databases named by --prefix (sy_bench), migrated with
   ``manage.py migrate_all``.
2. gunicorn with gunicorn.conf.py (2 gthread workers x 4 threads) on 127.0.0.1.
3. Load: --clients threads per role (reader, writer, analytics, dashboard, legacy; 3 each by
   default), each looping over its operations: read a user, list posts, create a user, create a
   post, create an analytics event, read a dashboard, list legacy customers. Every 2xx write's id
   is kept. A monitor polls /health/ready every 0.25 s.
4. Timeline: baseline -> analytics_db stopped (``pg_ctl stop -m immediate``: a crash) -> started
   -> the replica stopped -> started -> MariaDB stopped (SIGTERM to its mariadbd) -> started ->
   the PostgreSQL primary (default, users_db) stopped (``-m fast``, as a restart does) -> started
   -> final baseline.
5. Checks (exit 1 when one fails):
   - no 5xx, except a 503 from an endpoint whose own database was down at the time; never a 500;
     no timeouts or refused connections;
   - readiness answered 503 naming the database while it was down (a required alias), or 200
     with it not passing (legacy_db, not required), and 200 with it passing after;
   - dashboards answered 200 with ``analytics_db`` in ``degraded`` while it was down;
   - while MariaDB was down: the legacy endpoint answered 503 naming legacy_db, and every other
     operation 2xx;
   - writes to the other databases all 2xx during the analytics, replica and MariaDB outages;
     while the primary was down, writes to it answered 503 (never 500);
   - every write acknowledged with 2xx is in its database afterwards (counted by id);
   - recovery (readiness back to pass) within --recovery-limit seconds of the restart, and for
     the primary within 5 s of it accepting connections (and a write 2xx again within 5 s),
     without restarting gunicorn.

The figures are printed and written to var/faults/faults-<time>.json (its own directory: the
other benchmarks keep their token and cache_db under var/bench).
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
CLUSTERS = Path(os.environ.get("BENCH_CLUSTERS_DIR", "/var/lib/postgresql/15"))
PRIMARY_PORT = int(os.environ.get("BENCH_PRIMARY_PORT", "5440"))
REPLICA_PORT = int(os.environ.get("BENCH_REPLICA_PORT", "5441"))
ANALYTICS_PORT = int(os.environ.get("BENCH_ANALYTICS_PORT", "5442"))
MARIADB_PORT = int(os.environ.get("BENCH_MARIADB_PORT", "3310"))
PRIMARY_DATA = CLUSTERS / "switchyard-bench-primary"
REPLICA_DATA = CLUSTERS / "switchyard-bench-replica"
ANALYTICS_DATA = Path(os.environ.get("BENCH_ANALYTICS_DATA", str(CLUSTERS / "switchyard-bench-analytics-5442")))
MARIADB_DATA = Path(os.environ.get("BENCH_MARIADB_DATA", "/var/lib/mysql-switchyard-bench"))
MARIADB_RUN = Path("/run/mysqld-switchyard-bench")
LOG_DIR = Path("/var/log/postgresql")
ANALYTICS_LOG = LOG_DIR / "switchyard-bench-analytics.log"

ANALYTICS = "analytics_db"
USERS = "users_db"
DEFAULT = "default"
LEGACY = "legacy_db"
REPLICAS = ("default_replica_1", "users_db_replica_1")


def log(message: str) -> None:
    print(f"==> faults: {message}", file=sys.stderr, flush=True)


def run(
    *cmd: str, env: dict[str, str] | None = None, check: bool = True, quiet: bool = True
) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd,
        env=env,
        check=check,
        text=True,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.PIPE if quiet else None,
    )


def as_postgres(*cmd: str) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        return run("runuser", "-u", "postgres", "--", *cmd)
    return run(*cmd)


def psql(port: int, sql: str, db: str = "postgres") -> str:
    return run("psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-XtAqc", sql).stdout.strip()


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


def pg_ctl(data: Path, *args: str) -> None:
    as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), *args)


def pg_ready(port: int) -> bool:
    return run(str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q", check=False).returncode == 0


def initdb(data: Path, port: int, extra: str = "") -> None:
    if (data / "PG_VERSION").exists():
        return
    log(f"initdb for a throwaway cluster in {data} (port {port})")
    run("install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", str(data))
    as_postgres(
        str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"
    )
    with (data / "postgresql.auto.conf").open("a") as fh:
        fh.write(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\n"
            "unix_socket_directories = '/var/run/postgresql'\nmax_connections = 80\n"
            f"shared_buffers = 32MB\nfsync = on\n{extra}"
        )


def cluster_start(data: Path, port: int, name: str) -> None:
    if not pg_ready(port):
        pg_ctl(data, "-l", str(LOG_DIR / f"{name}.log"), "-w", "-t", "60", "start")


def cluster_stop(data: Path, mode: str = "immediate") -> None:
    if (data / "postmaster.pid").exists():
        pg_ctl(data, "-m", mode, "-w", "-t", "60", "stop")


def analytics_cluster_start() -> None:
    initdb(ANALYTICS_DATA, ANALYTICS_PORT)
    cluster_start(ANALYTICS_DATA, ANALYTICS_PORT, "switchyard-bench-analytics")


def analytics_cluster_stop(mode: str = "immediate") -> None:
    cluster_stop(ANALYTICS_DATA, mode)


def primary_start() -> None:
    initdb(PRIMARY_DATA, PRIMARY_PORT, "wal_level = replica\nmax_wal_senders = 5\nwal_keep_size = 256MB\n")
    cluster_start(PRIMARY_DATA, PRIMARY_PORT, "switchyard-bench-primary")


def primary_stop(mode: str = "fast") -> None:
    cluster_stop(PRIMARY_DATA, mode)


def replica_rebuild() -> None:
    """A fresh streaming replica of the drill's primary (a small cluster: about a second)."""
    cluster_stop(REPLICA_DATA, "immediate")
    run("rm", "-rf", str(REPLICA_DATA))
    run("install", "-d", "-o", "postgres", "-g", "postgres", "-m", "700", str(REPLICA_DATA))
    as_postgres(
        str(PG_BIN / "pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(PRIMARY_PORT),
        "-U",
        "postgres",
        "-D",
        str(REPLICA_DATA),
        "-R",
        "-X",
        "stream",
    )
    with (REPLICA_DATA / "postgresql.auto.conf").open("a") as fh:
        fh.write(f"port = {REPLICA_PORT}\nhot_standby = on\n")
    replica_start()


def replica_start() -> None:
    cluster_start(REPLICA_DATA, REPLICA_PORT, "switchyard-bench-replica")


def replica_stop() -> None:
    cluster_stop(REPLICA_DATA, "immediate")


def wait_replica_caught_up(limit: float = 30) -> None:
    """The replica has replayed everything the primary wrote (the fresh databases)."""
    target = psql(PRIMARY_PORT, "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if psql(REPLICA_PORT, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t":
            return
        time.sleep(0.2)
    raise SystemExit("the drill's replica did not catch up")


class MariaDB:
    """A mariadbd of the drill's own: own datadir, socket and port; stopped with SIGTERM."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not (MARIADB_DATA / "mysql").exists():
            log(f"mariadb-install-db in {MARIADB_DATA}")
            run("install", "-d", "-o", "mysql", "-g", "mysql", "-m", "750", str(MARIADB_DATA))
            run(
                "mariadb-install-db",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={MARIADB_DATA}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            )
        run("install", "-d", "-o", "mysql", "-g", "mysql", str(MARIADB_RUN))
        log_file = (MARIADB_DATA.parent / "mysql-switchyard-bench.log").open("ab")
        self.process = subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={MARIADB_DATA}",
                f"--port={MARIADB_PORT}",
                "--bind-address=127.0.0.1",
                f"--socket={MARIADB_RUN}/mysqld.sock",
                f"--pid-file={MARIADB_RUN}/mysqld.pid",
                "--skip-name-resolve=0",
                "--innodb-buffer-pool-size=64M",
                "--max-connections=200",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while (
            run(
                "mariadb-admin", "-h", "127.0.0.1", "-P", str(MARIADB_PORT), "-u", "root", "ping", check=False
            ).returncode
            != 0
        ):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the drill's mariadbd did not start (see mysql-switchyard-bench.log)")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def mysql(sql: str) -> None:
    run("mysql", "-h", "127.0.0.1", "-P", str(MARIADB_PORT), "-u", "root", "-e", sql)


def fresh_databases(prefix: str) -> None:
    for port, name in (
        (PRIMARY_PORT, prefix),
        (PRIMARY_PORT, f"{prefix}_users"),
        (ANALYTICS_PORT, f"{prefix}_analytics"),
    ):
        psql(port, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(port, f'CREATE DATABASE "{name}"')
    mysql(
        f"DROP DATABASE IF EXISTS `{prefix}_legacy`; "
        f"CREATE DATABASE `{prefix}_legacy` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )


def app_env(prefix: str, port: int, var_dir: Path) -> dict[str, str]:
    pg = f"postgres://postgres@127.0.0.1:{PRIMARY_PORT}"
    rep = f"postgres://postgres@127.0.0.1:{REPLICA_PORT}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("DATABASE_URL") and not key.endswith("_REPLICA_URLS") and not key.endswith("_TABLESPACE")
    }
    env.update(
        {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": f"{pg}/{prefix}",
            "USERS_DATABASE_URL": f"{pg}/{prefix}_users",
            "ANALYTICS_DATABASE_URL": f"postgres://postgres@127.0.0.1:{ANALYTICS_PORT}/{prefix}_analytics",
            "LEGACY_DATABASE_URL": f"mysql://root@127.0.0.1:{MARIADB_PORT}/{prefix}_legacy",
            "DATABASE_REPLICA_URLS": f"{rep}/{prefix}",
            "USERS_DATABASE_REPLICA_URLS": f"{rep}/{prefix}_users",
            "SWITCHYARD_VAR_DIR": str(var_dir),
            "BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
            "GUNICORN_THREADS": os.environ.get("GUNICORN_THREADS", "4"),
            "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "metrics"),
            "METRICS_ENABLED": "1",
            "LOG_LEVEL": "WARNING",
            # A dead database must fail a request fast instead of holding a thread.
            "DB_CONNECT_TIMEOUT": "2",
            "DB_POOL_TIMEOUT": "2",
            "DB_POOL_RECONNECT_TIMEOUT": "2",
            "READINESS_TIMEOUT_SECONDS": "1",
            "REPLICA_HEALTH_WINDOW_SECONDS": os.environ.get("REPLICA_HEALTH_WINDOW_SECONDS", "5"),
            # The load generator is one client: lift the per-token throttle.
            "API_THROTTLE_RATE": "1000000/minute",
            "DJANGO_SETTINGS_MODULE": "core.settings",
        }
    )
    return env


def manage(env: dict[str, str], *args: str) -> str:
    return run(sys.executable, str(ROOT / "manage.py"), *args, env=env).stdout


def create_token(env: dict[str, str]) -> str:
    return manage(env, "create_api_token", "faults-bench", "--staff").strip().splitlines()[-1]


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------


def http(method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")[:200]
    return status, payload


@dataclass
class Outcome:
    op: str
    started: float
    ended: float
    status: int  # 0: no HTTP answer (refused, reset, timeout)
    error: str = ""
    degraded: list[str] = field(default_factory=list)


@dataclass
class Outage:
    alias: str
    stopping_at: float  # stop requested
    down_at: float = 0.0  # stop finished: the database is gone
    starting_at: float | None = None  # start requested
    up_at: float | None = None  # start finished: the database accepts connections
    ready_at: float | None = None  # readiness passed again for it


NEEDS = {  # databases without which an operation may answer 503
    "read_user": {USERS},
    "list_posts": {DEFAULT, USERS},
    "create_user": {USERS},
    "create_post": {DEFAULT, USERS},
    "create_event": {ANALYTICS},
    "dashboard": {USERS},
    "read_legacy": {LEGACY},
}
WEIGHTS = {
    "read_user": 25,
    "list_posts": 15,
    "create_user": 10,
    "create_post": 15,
    "create_event": 15,
    "dashboard": 20,
    "read_legacy": 10,
}
#: Each client plays one role, so that requests stuck on a dead database cannot starve the others
#: in the load generator (they still compete for the server's threads, as real clients do).
ROLES = {
    "reader": ("read_user", "list_posts"),
    "writer": ("create_user", "create_post"),
    "analytics": ("create_event",),
    "dashboard": ("dashboard",),
    "legacy": ("read_legacy",),
}


class Load:
    def __init__(self, base: str, token: str, user_ids: list[int], clients: int) -> None:
        self.base = base
        self.token = token
        self.user_ids = user_ids
        self.clients = clients
        self.outcomes: list[Outcome] = []
        self.acknowledged: dict[str, list[int]] = {"users_user": [], "blog_post": [], "analytics_event": []}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        n = 0
        for role, ops in ROLES.items():
            for _ in range(self.clients):
                thread = threading.Thread(target=self.client, args=(n, ops), name=f"{role}-{n}", daemon=True)
                thread.start()
                self.threads.append(thread)
                n += 1

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)

    def client(self, n: int, role_ops: tuple[str, ...]) -> None:
        rng = random.Random(n)
        ops = role_ops
        weights = [WEIGHTS[op] for op in ops]
        while not self.stop.is_set():
            op = rng.choices(ops, weights)[0]
            started = time.monotonic()
            try:
                status, payload, table = self.do(op, rng)
                error = ""
            except Exception as exc:  # noqa: BLE001 - refused, reset, timeout: all recorded
                status, payload, table, error = 0, None, None, f"{type(exc).__name__}: {exc}"
            outcome = Outcome(op, started, time.monotonic(), status, error)
            if status == 0 or status >= 400:
                outcome.error = error or json.dumps(payload)[:300]
            if op == "dashboard" and status == 200 and isinstance(payload, dict):
                outcome.degraded = list(payload.get("degraded") or [])
            with self.lock:
                self.outcomes.append(outcome)
                if table and 200 <= status < 300 and isinstance(payload, dict) and "id" in payload:
                    self.acknowledged[table].append(int(payload["id"]))

    def do(self, op: str, rng: random.Random) -> tuple[int, Any, str | None]:
        api = f"{self.base}/api/v1"
        user = rng.choice(self.user_ids)
        if op == "read_user":
            return (*http("GET", f"{api}/users/{user}/", token=self.token), None)
        if op == "list_posts":
            return (*http("GET", f"{api}/posts/?page_size=10&author_id={user}", token=self.token), None)
        if op == "create_user":
            name = f"b{uuid.uuid4().hex[:16]}"
            return (
                *http("POST", f"{api}/users/", {"username": name, "email": f"{name}@example.com"}, self.token),
                "users_user",
            )
        if op == "create_post":
            body = {"author_id": user, "title": "bench", "content": "written under faults"}
            return (*http("POST", f"{api}/posts/", body, self.token), "blog_post")
        if op == "create_event":
            body = {"event_type": "bench", "user_id": user, "session_id": f"s{rng.randrange(1000)}", "data": {}}
            return (*http("POST", f"{api}/analytics/events/", body, self.token), "analytics_event")
        if op == "dashboard":
            return (*http("GET", f"{api}/users/{user}/dashboard/", token=self.token), None)
        if op == "read_legacy":
            return (*http("GET", f"{api}/legacy/customers/?page_size=5", token=self.token), None)
        raise ValueError(op)


class ReadinessMonitor:
    def __init__(self, base: str) -> None:
        self.base = base
        self.samples: list[tuple[float, int, list[str], float]] = []  # sent, status, not passing, answered
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.is_set():
            at = time.monotonic()
            try:
                status, body = http("GET", f"{self.base}/health/ready", timeout=5)
                failing = [
                    entry[0]["componentId"]
                    for entry in (body or {}).get("checks", {}).values()
                    if entry and entry[0].get("status") != "pass"
                ]
            except Exception:  # noqa: BLE001
                status, failing = 0, []
            self.samples.append((at, status, failing, time.monotonic()))
            self.stop.wait(0.25)

    def wait_ready_without(self, aliases: set[str], since: float, limit: float) -> float | None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for at, status, failing, _ in reversed(self.samples):
                if at < since:
                    break
                if status == 200 and not aliases & set(failing):
                    return at
            time.sleep(0.1)
        return None


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A free loopback port of the drill's range (BENCH_PORT_FIRST..+19, default 18320)."""
    first = int(os.environ.get("BENCH_PORT_FIRST", "18320"))
    for port in range(first, first + 20):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free loopback port in {first}..{first + 19}")


def wait_http(url: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if http("GET", url, timeout=2)[0] == 200:
                return
        except Exception:  # noqa: BLE001, S110 - not up yet: try again until the deadline
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 within {limit}s")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


OUTAGE_ALIASES = {ANALYTICS: {ANALYTICS}, "replica": set(REPLICAS), LEGACY: {LEGACY}, "primary": {DEFAULT, USERS}}


def stop_servers(mariadb: MariaDB) -> None:
    for data in (REPLICA_DATA, ANALYTICS_DATA, PRIMARY_DATA):
        try:
            cluster_stop(data, "fast")
        except subprocess.CalledProcessError as exc:
            log(f"stopping {data} failed: {exc}")
    mariadb.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI form: 4 s phases")
    parser.add_argument("--phase-seconds", type=float, default=None)
    parser.add_argument(
        "--clients", type=int, default=3, help="clients per role (reader, writer, analytics, dashboard, legacy)"
    )
    parser.add_argument("--prefix", default="sy_bench")
    parser.add_argument("--recovery-limit", type=float, default=15.0)
    parser.add_argument(
        "--primary-recovery-limit",
        type=float,
        default=5.0,
        help="seconds from the primary accepting connections to readiness and writes passing",
    )
    parser.add_argument("--keep", action="store_true", help="leave the bench's analytics cluster running")
    args = parser.parse_args()
    phase = args.phase_seconds or (4.0 if args.short else 20.0)

    var_dir = ROOT / "var" / "faults"
    shutil.rmtree(var_dir, ignore_errors=True)
    (var_dir / "metrics").mkdir(parents=True)

    log("starting the drill's own servers: PostgreSQL primary, its replica, analytics cluster, MariaDB")
    mariadb = MariaDB()
    if not args.keep:
        # Stopped at the end, after the counts below (and on any failure before that).
        atexit.register(stop_servers, mariadb)
    primary_start()
    analytics_cluster_start()
    mariadb.start()
    replica_rebuild()
    fresh_databases(args.prefix)
    port = free_port()
    env = app_env(args.prefix, port, var_dir)
    log("migrating (manage.py migrate_all)")
    manage(env, "migrate_all")
    manage(env, "ensure_legacy_table")
    wait_replica_caught_up()
    token = create_token(env)

    log(f"gunicorn on 127.0.0.1:{port}")
    gunicorn_log = (var_dir / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=gunicorn_log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {"phase_seconds": phase, "clients": args.clients}
    failures: list[str] = []
    outages: list[Outage] = []
    try:
        wait_http(f"{base}/health")
        wait_http(f"{base}/health/ready", limit=30)
        status, _ = http("GET", f"{base}/api/v1/users/?page_size=1", token=token)
        if status == 404:
            log("the /api/v1/ resources are not on this branch: nothing to load (run on the merged main)")
            return 2
        user_ids = []
        for _ in range(20):
            name = f"seed{uuid.uuid4().hex[:12]}"
            status, body = http(
                "POST", f"{base}/api/v1/users/", {"username": name, "email": f"{name}@example.com"}, token
            )
            if status != 201:
                raise SystemExit(f"seeding users failed: {status} {body}")
            user_ids.append(int(body["id"]))
        load = Load(base, token, user_ids, args.clients)
        monitor = ReadinessMonitor(base)
        monitor.thread.start()
        load.acknowledged["users_user"].extend(user_ids)
        started = time.monotonic()
        load.start()
        marks: dict[str, float] = {"start": started}

        def outage(alias_names: set[str], stop: Any, start: Any, label: str) -> None:
            time.sleep(phase)
            log(f"stopping {label}")
            record = Outage(label, time.monotonic())
            outages.append(record)
            stop()
            record.down_at = time.monotonic()
            time.sleep(phase)
            log(f"starting {label}")
            record.starting_at = time.monotonic()
            start()
            record.up_at = time.monotonic()
            limit = args.primary_recovery_limit if label == "primary" else args.recovery_limit
            record.ready_at = monitor.wait_ready_without(alias_names, record.up_at, limit)
            log(f"{label} ready again after {(record.ready_at or float('nan')) - record.up_at:.2f}s")

        outage({ANALYTICS}, analytics_cluster_stop, analytics_cluster_start, ANALYTICS)
        outage(set(REPLICAS), replica_stop, replica_start, "replica")
        outage({LEGACY}, mariadb.stop, mariadb.start, LEGACY)
        outage({DEFAULT, USERS}, primary_stop, primary_start, "primary")
        time.sleep(phase)
        load.finish()
        monitor.stop.set()
        monitor.thread.join(5)
        marks["end"] = time.monotonic()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
        gunicorn_log.close()

    # -- analysis -------------------------------------------------------------------------------
    def down_during(o: Outcome) -> set[str]:
        """Databases that were down (stopped, or not yet ready again) at some point of ``o``."""
        out = set()
        for record in outages:
            end = record.ready_at or record.up_at or marks["end"]
            if record.alias == "primary" and record.up_at is not None:
                # Recovery allowance: within --primary-recovery-limit of it accepting connections
                # (a worker's breaker may still fail fast for its window, DB_BREAKER_SECONDS).
                end = max(end, record.up_at + args.primary_recovery_limit)
            if o.started <= end and o.ended >= record.stopping_at:
                out |= OUTAGE_ALIASES[record.alias]
                if record.alias == "primary":
                    out.add("auth")  # tokens live on default: any request may need it
        return out

    by_status: dict[str, int] = {}
    bad: list[Outcome] = []
    allowed_503 = 0
    for o in load.outcomes:
        by_status[str(o.status)] = by_status.get(str(o.status), 0) + 1
        if o.status == 0 or o.status >= 500:
            if o.status == 503 and (NEEDS[o.op] | {"auth"}) & down_during(o):
                allowed_503 += 1
            else:
                bad.append(o)
        elif o.status >= 400:
            bad.append(o)
    t0 = marks["start"]
    report["timeline_s"] = [
        {key: (round(value - t0, 2) if isinstance(value, float) else value) for key, value in asdict(r).items()}
        for r in outages
    ]
    report["requests"] = len(load.outcomes)
    report["by_status"] = by_status
    report["throughput_rps"] = round(len(load.outcomes) / (marks["end"] - marks["start"]), 1)
    report["latency_ms"] = {
        op: {"p50": round(percentile(ms, 0.5), 1), "p95": round(percentile(ms, 0.95), 1), "n": len(ms)}
        for op in WEIGHTS
        for ms in [[(o.ended - o.started) * 1000 for o in load.outcomes if o.op == op]]
    }
    # Throughput per window: before, during and after each outage.
    windows = [("baseline", marks["start"], outages[0].stopping_at)]
    for i, record in enumerate(outages):
        windows.append((f"{record.alias}_down", record.down_at, record.starting_at or record.down_at))
        following = outages[i + 1].stopping_at if i + 1 < len(outages) else marks["end"]
        windows.append((f"after_{record.alias}", record.ready_at or record.up_at or following, following))
    report["throughput_rps_by_window"] = {
        name: round(sum(1 for o in load.outcomes if start <= o.ended < end) / max(end - start, 1e-9), 1)
        for name, start, end in windows
    }
    report["503_while_own_database_down"] = allowed_503
    report["unexpected"] = len(bad)
    if bad:
        failures.append(f"{len(bad)} unexpected answers (5xx, 4xx or no answer)")
        report["unexpected_examples"] = [
            {**asdict(o), "started": round(o.started - t0, 2), "ended": round(o.ended - t0, 2)} for o in bad[:10]
        ]

    # Readiness while down / after.
    for record in outages:
        names = OUTAGE_ALIASES[record.alias]
        required = record.alias != LEGACY  # legacy_db is not in READINESS_REQUIRED_ALIASES
        # Samples sent after the stop finished and answered before the start began.
        while_down = [s for s in monitor.samples if record.down_at <= s[0] and s[3] <= (record.starting_at or 0)]
        expected = 503 if required else 200
        named = [s for s in while_down if s[1] == expected and names & set(s[2])]
        report[f"readiness_{record.alias}"] = {
            "samples_while_down": len(while_down),
            f"{expected}_naming_it": len(named),
            "other_answers": [
                {"at": round(s[0] - t0, 2), "status": s[1], "not_passing": s[2]} for s in while_down if s not in named
            ],
            "ready_again_s": None if record.ready_at is None else round(record.ready_at - (record.up_at or 0), 2),
        }
        if not while_down or len(named) != len(while_down):
            failures.append(f"readiness did not answer {expected} naming {record.alias} throughout its outage")
        if record.ready_at is None:
            limit = args.primary_recovery_limit if record.alias == "primary" else args.recovery_limit
            failures.append(f"readiness did not pass within {limit}s after {record.alias} returned")

    def window(record: Outage, ops: set[str] | None = None) -> list[Outcome]:
        """Requests sent after the stop finished and answered before the start began."""
        return [
            o
            for o in load.outcomes
            if (ops is None or o.op in ops) and o.started >= record.down_at and o.ended <= (record.starting_at or 0)
        ]

    # Dashboards while analytics was down.
    analytics_outage = next(r for r in outages if r.alias == ANALYTICS)
    dashboards = window(analytics_outage, {"dashboard"})
    degraded_ok = [o for o in dashboards if o.status == 200 and ANALYTICS in o.degraded]
    report["dashboards_while_analytics_down"] = {"total": len(dashboards), "200_degraded_analytics": len(degraded_ok)}
    if not dashboards or len(degraded_ok) != len(dashboards):
        failures.append("dashboards did not all answer 200 with analytics_db degraded while it was down")

    # Writes to the other databases kept succeeding during each outage but the primary's.
    for record in outages:
        if record.alias == "primary":
            continue
        during = window(record, {"create_user", "create_post"})
        ok = [o for o in during if 200 <= o.status < 300]
        report[f"other_writes_during_{record.alias}_outage"] = {"total": len(during), "2xx": len(ok)}
        if not during or len(ok) != len(during):
            failures.append(f"writes to users_db/default failed during the {record.alias} outage")

    # MariaDB down: the legacy endpoint 503 naming legacy_db; everything else unaffected.
    legacy_outage = next(r for r in outages if r.alias == LEGACY)
    legacy_reads = window(legacy_outage, {"read_legacy"})
    named_503 = [o for o in legacy_reads if o.status == 503 and LEGACY in o.error]
    others = window(legacy_outage, set(WEIGHTS) - {"read_legacy"})
    others_ok = [o for o in others if 200 <= o.status < 300]
    report["while_mariadb_down"] = {
        "legacy_reads": len(legacy_reads),
        "503_naming_legacy_db": len(named_503),
        "other_requests": len(others),
        "other_2xx": len(others_ok),
    }
    if not legacy_reads or len(named_503) != len(legacy_reads):
        failures.append("legacy reads did not all answer 503 naming legacy_db while MariaDB was down")
    if not others or len(others_ok) != len(others):
        failures.append("requests to the other databases were affected while MariaDB was down")

    # The primary restarted: its writes 503 (never 500) while down; writes 2xx again soon after.
    primary_outage = next(r for r in outages if r.alias == "primary")
    primary_writes = window(primary_outage, {"create_user", "create_post"})
    by = {}
    for o in window(primary_outage):
        by.setdefault(o.op, {}).setdefault(str(o.status), 0)
        by[o.op][str(o.status)] += 1
    up = primary_outage.up_at or marks["end"]
    first_write_ok = min(
        (
            o.ended
            for o in load.outcomes
            if o.op in ("create_user", "create_post") and o.started >= up and 200 <= o.status < 300
        ),
        default=None,
    )
    report["while_primary_down"] = {
        "answers_by_operation": by,
        "writes": len(primary_writes),
        "writes_503": sum(1 for o in primary_writes if o.status == 503),
        "any_500": sum(1 for o in load.outcomes if o.status == 500),
        "first_2xx_write_after_up_s": None if first_write_ok is None else round(first_write_ok - up, 2),
        "last_503_after_up_s": max(
            (round(o.ended - up, 2) for o in load.outcomes if o.status == 503 and o.started >= up), default=None
        ),
        "503_after_up": [
            {
                "op": o.op,
                "started_s": round(o.started - up, 2),
                "ended_s": round(o.ended - up, 2),
                "error": o.error[:160],
            }
            for o in load.outcomes
            if o.status == 503 and o.started >= up
        ][-8:],
    }
    if not primary_writes or any(o.status != 503 for o in primary_writes):
        failures.append("writes to the primary did not all answer 503 while it was down")
    if first_write_ok is None or first_write_ok - up > args.primary_recovery_limit:
        failures.append(
            f"no write succeeded within {args.primary_recovery_limit}s of the primary accepting connections"
        )

    # Every acknowledged write is in its database.
    import psycopg

    where = {
        "users_user": (PRIMARY_PORT, f"{args.prefix}_users"),
        "blog_post": (PRIMARY_PORT, args.prefix),
        "analytics_event": (ANALYTICS_PORT, f"{args.prefix}_analytics"),
    }
    writes: dict[str, dict[str, int]] = {}
    for table, ids in load.acknowledged.items():
        port_, db = where[table]
        with psycopg.connect(host="127.0.0.1", port=port_, user="postgres", dbname=db) as conn:
            found = conn.execute(f"SELECT count(*) FROM {table} WHERE id = ANY(%s)", [ids]).fetchone()[0]
        writes[table] = {"acknowledged": len(ids), "found": found, "lost": len(set(ids)) - found}
        if found != len(set(ids)):
            failures.append(f"{table}: {len(set(ids)) - found} acknowledged writes missing")
    report["acknowledged_writes"] = writes

    if not args.keep:
        stop_servers(mariadb)
    report["failures"] = failures
    out = ROOT / "var" / "faults" / f"faults-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    log(f"report: {out}")
    log("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
