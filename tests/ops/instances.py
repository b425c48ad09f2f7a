"""Several real service instances side by side, for tests: ``scripts/proxy`` (nginx on a loopback
port in front of N gunicorn instances, each on a UNIX socket of its own) on the test databases.

    with Instances(tmp_path, count=2, env={"CACHE_URL": redis_url()}) as service:
        service.request("GET", "/api/v1/stats/", instance=0, token=key)   # straight to instance 0
        service.request("GET", "/health")                                  # through nginx

The instances read the databases the test process reads (pytest-django's test databases: use
``transactional_db`` so that their rows are committed), so a test can write through one instance
and check through another, or through the ORM. Reused by tests/ops/test_instances.py and by any
test that needs more than one process (e.g. a token revoked through one instance).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parents[2]
#: Loopback ports the harness may listen on (the issue-13 helper's range; any free one is taken).
PORT_RANGE = range(
    int(os.environ.get("SWITCHYARD_TEST_PORT_FIRST", "18340")),
    int(os.environ.get("SWITCHYARD_TEST_PORT_LAST", "18399")) + 1,
)
REDIS_DB = int(os.environ.get("SWITCHYARD_TEST_REDIS_DB", "13"))


def redis_url() -> str:
    return f"redis://127.0.0.1:6379/{REDIS_DB}"


def free_port() -> int:
    for port in PORT_RANGE:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free loopback port in {PORT_RANGE}")


def database_url(alias: str) -> str:
    """The URL of ``alias``'s database as this (test) process sees it: the test database."""
    config = connections[alias].settings_dict
    engine = config["ENGINE"]
    name = config["NAME"]
    if "sqlite" in engine:
        return f"sqlite:///{name}"
    scheme = "postgres" if "postgresql" in engine else "mysql"
    user = config.get("USER") or ""
    password = config.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = config.get("HOST") or "127.0.0.1"
    port = config.get("PORT") or ("5432" if scheme == "postgres" else "3306")
    return f"{scheme}://{auth}{host}:{port}/{name}"


def database_env(*, mirror_replicas: bool = False) -> dict[str, str]:
    """``*_DATABASE_URL`` for every primary alias, pointing at this process's (test) databases.
    ``mirror_replicas``: every primary also gets one replica URL naming its own database (reads
    routed to ``<alias>_replica_1`` see the primary's rows, and Server-Timing names the alias)."""
    from core import aliases

    env = {aliases.URL_ENV[primary]: database_url(primary) for primary in aliases.PRIMARIES}
    for primary in aliases.PRIMARIES:
        env[aliases.replica_env(primary)] = ""
    if mirror_replicas:
        for primary in (aliases.DEFAULT, aliases.USERS):
            env[aliases.replica_env(primary)] = database_url(primary)
    return env


class Instances:
    """``count`` gunicorn instances behind nginx, started by ``scripts/proxy``; stopped on exit."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        count: int = 2,
        env: dict[str, str] | None = None,
        mirror_replicas: bool = False,
        startup_seconds: float = 60,
    ) -> None:
        self.run_dir = tmp_path / f"proxy-{uuid.uuid4().hex[:6]}"
        self.count = count
        self.port = free_port()
        self.startup_seconds = startup_seconds
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "DJANGO_SETTINGS_MODULE": "core.settings",
            "SECRET_KEY": settings.SECRET_KEY,
            "BIND": f"127.0.0.1:{self.port}",
            "SERVE_INSTANCES": str(count),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "4",
            "LOG_LEVEL": "WARNING",
            "SWITCHYARD_VAR_DIR": str(tmp_path / "var"),
            # Every instance's cache entries under one prefix of this test's own.
            "CACHE_KEY_PREFIX": f"h13test-{uuid.uuid4().hex[:8]}",
            **database_env(mirror_replicas=mirror_replicas),
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = tmp_path / f"{self.run_dir.name}.log"

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Instances:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(ROOT / "scripts" / "proxy"), str(self.run_dir)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_seconds
        while True:
            ready = []
            for target in [None, *range(self.count)]:
                try:
                    ready.append(self.request("GET", "/health", instance=target, timeout=2)[0] == 200)
                except OSError:
                    ready.append(False)
            if all(ready):
                return self
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("scripts/proxy did not come up; its log ends:\n" + self.tail())
            time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # scripts/proxy forwards SIGTERM to its gunicorns and nginx and waits for them.
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.log.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- requests ------------------------------------------------------------------------------
    def socket_path(self, instance: int) -> str:
        return str(self.run_dir / f"gunicorn-{instance + 1}.sock")

    def request(
        self,
        method: str,
        path: str,
        *,
        instance: int | None = None,
        token: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float = 15,
    ) -> tuple[int, dict[str, str], Any]:
        """One request on a new connection: through nginx (``instance=None``) or straight to
        instance ``instance`` (0-based). Returns (status, headers, JSON body or raw bytes)."""
        if instance is None:
            conn: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        else:
            conn = _UnixHTTPConnection(self.socket_path(instance), timeout=timeout)
        sent = {"Host": "localhost", **(headers or {})}
        if token:
            sent["Authorization"] = f"Token {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            raw = response.read()
            answer_headers = {k: v for k, v in response.getheaders()}
        finally:
            conn.close()
        content_type = answer_headers.get("Content-Type", "")
        payload: Any = json.loads(raw) if raw and "json" in content_type else raw
        return response.status, answer_headers, payload


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def server_timing_aliases(headers: dict[str, str]) -> set[str]:
    """``users_db;dur=1.2, default_replica_1;dur=0.4`` -> {"users_db", "default_replica_1"}."""
    raw = headers.get("Server-Timing", "")
    return {part.split(";", 1)[0].strip() for part in raw.split(",") if part.strip()}


__all__ = ["Instances", "database_env", "database_url", "free_port", "redis_url", "server_timing_aliases"]
