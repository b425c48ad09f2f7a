"""gunicorn.conf.py for real: gthread workers, JSON logs, metrics summed across workers, graceful stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def start_gunicorn(env: dict[str, str], log: Any) -> tuple[subprocess.Popen, str]:
    """gunicorn with gunicorn.conf.py on ``env["BIND"]``, output to ``log``; returns once /health
    answers 200 (the process and its base URL). Fails, naming the log's end, when it exits first or
    does not come up within 30 s; stopping it is the caller's part."""
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://{env['BIND']}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if get(f"{base}/health")[0] == 200:
                return server, base
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() >= deadline:
            if server.poll() is None:
                server.kill()
            log.seek(0)
            tail = "".join(log.readlines()[-15:])
            raise AssertionError(f"gunicorn exited or did not come up within 30 s; its log ends:\n{tail}")
        time.sleep(0.2)


def test_gunicorn_serves_with_json_logs_shared_metrics_and_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        "GUNICORN_THREADS": "2",
        "METRICS_ENABLED": "1",
        "METRICS_TOKEN": "",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "SWITCHYARD_VAR_DIR": str(tmp_path / "var"),
    }
    log = (tmp_path / "gunicorn.log").open("w+")
    server, base = start_gunicorn(env, log)
    try:
        # New connections each time, several at once, so that the workers share them.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: get(f"{base}/health", **{"X-Request-ID": f"gtest-{i}"}), range(40)))
        assert {status for status, _, _ in answers} == {200}
        assert {headers["Content-Type"] for _, headers, _ in answers} == {"application/health+json"}
        status, _, body = get(f"{base}/metrics")
        assert status == 200
        text = body.decode()
        line = next(
            l
            for l in text.splitlines()
            if l.startswith("switchyard_http_requests_total{") and 'route="/health"' in l and 'status="200"' in l
        )
        counted = float(line.rsplit(" ", 1)[1])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
    log.seek(0)
    assert code == 0, f"gunicorn exited with {code}; its log ends:\n" + "".join(log.readlines()[-15:])
    log.seek(0)
    lines = [json.loads(raw) for raw in log.read().splitlines() if raw.strip()]
    access = [entry for entry in lines if entry["logger"] == "gunicorn.access"]
    ids = {entry.get("request_id") for entry in access}
    assert {f"gtest-{i}" for i in range(40)} <= ids
    # The counter is the sum over the workers' files: exactly the /health answers they logged.
    served = [entry for entry in access if entry["path"] == "/health" and entry["status"] == 200]
    assert counted == len(served)
    assert all(entry["route"] == "/health" and entry["duration_ms"] > 0 for entry in served)
    assert any(entry["msg"] == "Shutting down: Master" for entry in lines)


def test_sigterm_lets_an_in_flight_request_finish(tmp_path: Path) -> None:
    """Graceful shutdown: a request in progress when SIGTERM arrives still gets its answer.

    The slow request is a readiness probe whose analytics_db is a server that accepts connections
    and never answers (a hung database): the probe takes READINESS_TIMEOUT_SECONDS and answers 503."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = free_port()
    env = {
        **os.environ,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        "READINESS_TIMEOUT_SECONDS": "2",
        "ANALYTICS_DATABASE_URL": f"postgres://postgres@127.0.0.1:{silent.getsockname()[1]}/hung",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "SWITCHYARD_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("ANALYTICS_DATABASE_REPLICA_URLS", None)
    log = (tmp_path / "gunicorn.log").open("w+")
    try:
        server, base = start_gunicorn(env, log)
    except AssertionError:
        silent.close()
        raise
    try:
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(get, f"{base}/health/ready")
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            status, _headers, body = pending.result(timeout=20)
            elapsed = time.monotonic() - started
        assert status == 503
        check = json.loads(body)["checks"]["analytics_db:responseTime"][0]
        # The probe's deadline and libpq's connect_timeout (2 s at least) race: either may win.
        assert check["status"] == "fail"
        assert check["output"] in {"timed out after 2s", "timed out"}
        assert 1.8 < elapsed < 5
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
        silent.close()
