"""``scripts/stack``: docker-compose.yml's topology run whole on this machine, for real. ``up`` brings
up nginx, two gunicorn instances, PgBouncer, a PostgreSQL primary with a streaming replica, MariaDB,
Redis, the scheduler and Prometheus; a write through nginx lands on the primary through PgBouncer and
a read comes back from the replica; Prometheus scrapes both instances and counts exactly the requests
sent through nginx; the scheduler runs a crontab line at its time; a second ``up`` changes nothing;
``down`` leaves no process and no listening port.

Marked ``stack`` (about two minutes, most of it waiting for the crontab's minute): deselected unless
asked for with ``-m stack`` (``.ci/run`` runs it as a step of its own). Needs the Debian packages
``scripts/stack`` installs and, as root, the postgres and mysql users. Ports: from
``STACK_TEST_PORT_BASE`` (18790) to +8; data in ``var/stack-test/`` (removed at the end), or in
/var/tmp when a directory above the checkout is closed to the postgres and mysql users."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.ops.instances import ROOT

pytestmark = pytest.mark.stack

PORT_BASE = int(os.environ.get("STACK_TEST_PORT_BASE", "18790"))
PORTS = range(PORT_BASE, PORT_BASE + 9)  # + Prometheus (+6) and the two instances' metrics ports


def stack_dir() -> Path:
    """``var/stack-test`` in the checkout, unless a directory above the checkout is closed to
    other users (as root, PostgreSQL and MariaDB run as postgres and mysql and must reach their
    data; scripts/stack opens the checkout's own directories, never those above it)."""
    above = [ROOT, *ROOT.parents]
    if all(path.stat().st_mode & stat.S_IXOTH for path in above):
        return ROOT / "var" / "stack-test"
    return Path("/var/tmp") / f"switchyard-stack-test-{os.getuid()}"


STACK_DIR = stack_dir()
#: The crontab's own lines, and recover_sagas once a minute: the line the test waits for.
PROBE = "* * * * * python manage.py recover_sagas"
SERVICES = (
    "proxy",
    "web-1",
    "web-2",
    "pgbouncer",
    "postgres",
    "postgres-replica",
    "mariadb",
    "redis",
    "scheduler",
    "prometheus",
)


def stack(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "stack"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status_pids(output: str) -> dict[str, int]:
    pids = {}
    for line in output.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] in SERVICES and fields[2].isdigit():
            pids[fields[0]] = int(fields[2])
    return pids


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def processes_under(directory: Path) -> list[str]:
    """Command lines of live processes that name ``directory`` (the stack's own files)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in cmdline:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def http(env: dict[str, str], method: str, path: str, body: dict | None = None) -> tuple[int, dict[str, str], dict]:
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", PORT_BASE, timeout=15)
    headers = {"Host": "localhost", "Authorization": f"Token {env['SWITCHYARD_TOKEN']}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, dict(response.getheaders()), json.loads(payload) if payload else {}
    finally:
        conn.close()


def psql(port: int, database: str, sql: str) -> str:
    return subprocess.run(
        ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", database, "-XAtqc", sql],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def pgbouncer_transactions(port: int, database: str) -> int:
    for line in psql(port, "pgbouncer", "SHOW STATS").splitlines():
        fields = line.split("|")
        if fields[0] == database:
            return int(fields[1])
    raise AssertionError(f"PgBouncer has no stats for {database}")


def prometheus(path: str, **query: str):
    import json

    url = f"http://127.0.0.1:{PORT_BASE + 6}{path}?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.load(answer)["data"]


def scraped_after(moment: float) -> list[dict]:
    """Prometheus' targets once each was scraped after ``moment`` and is up (or the last seen)."""
    from datetime import datetime

    deadline = time.monotonic() + 20
    while True:
        targets = prometheus("/api/v1/targets", state="active")["activeTargets"]
        if targets and all(
            t["health"] == "up"
            and datetime.fromisoformat(t["lastScrape"].replace("Z", "+00:00")[:26] + "+00:00").timestamp()
            > moment + 0.2
            for t in targets
        ):
            return targets
        if time.monotonic() > deadline:
            return targets
        time.sleep(0.3)


def test_the_stack_comes_up_serves_through_nginx_runs_the_schedule_and_goes_down() -> None:
    busy = [port for port in PORTS if listening(port)]
    assert not busy, f"ports {busy} are taken: set STACK_TEST_PORT_BASE"
    shutil.rmtree(STACK_DIR, ignore_errors=True)
    STACK_DIR.mkdir(parents=True)
    crontab = STACK_DIR / "crontab"
    crontab.write_text((ROOT / "docker" / "scheduler" / "crontab").read_text() + PROBE + "\n")
    probe_job = sum(1 for line in crontab.read_text().splitlines() if line.strip() and not line.startswith("#"))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        # The virtualenv this test runs in (its prefix, not the interpreter its python links to).
        "SWITCHYARD_VENV": sys.prefix,
        "STACK_DIR": str(STACK_DIR),
        "STACK_PORT_BASE": str(PORT_BASE),
        "STACK_CRONTAB": str(crontab),
        "WEB_CONCURRENCY": "1",
        "STACK_SCRAPE_INTERVAL": "1s",
    }
    try:
        up = stack("up", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "stack up in" in up.stderr
        print(up.stderr)  # how long each part took (.ci/run shows it)

        status = stack("status", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        pids = status_pids(status.stdout)
        assert set(pids) == set(SERVICES), status.stdout
        assert status.stdout.count("healthy: ") == len(SERVICES), status.stdout
        for port in PORTS:
            assert listening(port), (port, status.stdout)

        exports = {}
        for line in stack("env", env=env).stdout.splitlines():
            if line.startswith("export "):
                for word in shlex.split(line[len("export ") :]):
                    name, _, value = word.partition("=")
                    exports[name] = value
        assert exports["SWITCHYARD_URL"] == f"http://127.0.0.1:{PORT_BASE}"
        assert exports["DB_PGBOUNCER"] == "1"
        assert exports["DATABASE_URL"].endswith(f":{PORT_BASE + 1}/switchyard")
        pgbouncer_port, primary_port, replica_port = PORT_BASE + 1, PORT_BASE + 2, PORT_BASE + 3

        # A write through nginx: users_db on the primary, through PgBouncer.
        before = pgbouncer_transactions(pgbouncer_port, "switchyard_users")
        code, headers, created = http(
            exports, "POST", "/api/v1/users/", {"username": "stack_probe", "email": "probe@example.com"}
        )
        assert code == 201, created
        assert "users_db;" in headers["Server-Timing"]
        assert pgbouncer_transactions(pgbouncer_port, "switchyard_users") > before
        user_id = created["id"]
        assert psql(primary_port, "switchyard_users", f"SELECT username FROM users_user WHERE id = {user_id}") == (
            "stack_probe"
        )
        # A read (no pin sent back): from the streaming replica once it has replayed the row.
        deadline = time.monotonic() + 10
        while True:
            code, headers, found = http(exports, "GET", "/api/v1/users/?username=stack_probe")
            assert code == 200, found
            if found["count"] == 1:
                break
            assert time.monotonic() < deadline, "the replica never showed the new user"
            time.sleep(0.2)
        assert "users_db_replica_1;" in headers["Server-Timing"], headers
        assert found["results"][0]["id"] == user_id
        assert psql(replica_port, "switchyard_users", "SELECT pg_is_in_recovery()") == "t"

        # Prometheus scrapes each instance on its own port (never through nginx, which refuses
        # /metrics) and, summed over both, counts exactly the requests sent through nginx.
        assert http(exports, "GET", "/metrics")[0] == 404
        targets = scraped_after(time.time())
        assert sorted(t["labels"]["instance"] for t in targets) == [
            f"127.0.0.1:{PORT_BASE + 7}",
            f"127.0.0.1:{PORT_BASE + 8}",
        ], targets
        assert all(t["health"] == "up" for t in targets), targets
        series = 'sum(switchyard_http_requests_total{job="switchyard",route="/health",method="GET",status="200"})'
        result = prometheus("/api/v1/query", query=series)["result"]
        before_count = float(result[0]["value"][1]) if result else 0.0
        sent = 30
        for _ in range(sent):
            assert http(exports, "GET", "/health")[0] == 200
        assert all(t["health"] == "up" for t in scraped_after(time.time()))
        assert float(prometheus("/api/v1/query", query=series)["result"][0]["value"][1]) - before_count == sent

        # A second `up` changes nothing and says so.
        again = stack("up", env=env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "nothing changed" in again.stderr
        assert status_pids(stack("status", env=env).stdout) == pids

        # The scheduler runs the once-a-minute line at its time (within 65 s of starting).
        log = STACK_DIR / "log" / "scheduler.log"
        deadline = time.monotonic() + 75
        while f"job={probe_job} exit=0" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(1)
        assert f"job={probe_job} start schedule='* * * * *' command='python manage.py recover_sagas'" in log.read_text()

        down = stack("down", env=env)
        assert down.returncode == 0, down.stdout + down.stderr
        assert "no process left, no port listening" in down.stderr
        print(down.stderr)
        assert [name for name, pid in pids.items() if pid_alive(pid)] == []
        assert [port for port in PORTS if listening(port)] == []
        assert processes_under(STACK_DIR) == []
        assert "stopped" in stack("status", env=env).stdout
    finally:
        if processes_under(STACK_DIR):
            stack("down", env=env)
        shutil.rmtree(STACK_DIR, ignore_errors=True)
