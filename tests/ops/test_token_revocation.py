"""A token revoked through one process is refused by every process at once where they share Redis
(CACHE_URL), and not before API_TOKEN_CACHE_SECONDS where they do not: two real gunicorn
instances, and the revocation made by a third process (``manage.py revoke_api_token``)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.ops.test_gunicorn import ROOT, free_port, get, start_gunicorn

REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


@contextmanager
def server(env: dict[str, str], tmp: Path, name: str) -> Iterator[str]:
    log = (tmp / f"{name}.log").open("w+")
    process, base = start_gunicorn(
        {**env, "BIND": f"127.0.0.1:{free_port()}", "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "2"}, log
    )
    try:
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def _env(tmp: Path, shared: bool) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "SWITCHYARD_VAR_DIR": str(tmp / "var"),
        # Long: only the shared generation can make a process forget a token it remembers.
        "API_TOKEN_CACHE_SECONDS": "600",
        "METRICS_ENABLED": "0",
    }
    env.pop("CACHE_URL", None)
    if shared:
        env["CACHE_URL"] = REDIS_URL
        env["CACHE_KEY_PREFIX"] = f"revocation-test-{secrets.token_hex(4)}"
    return env


def _status(base: str, key: str) -> tuple[int, bytes]:
    status, _, body = get(f"{base}/api/v1/posts/?page_size=1", Authorization=f"Token {key}")
    return status, body


@pytest.mark.parametrize("shared", [True, False], ids=["shared-redis", "per-process"])
def test_revocation_reaches_every_process_sharing_the_cache(tmp_path: Path, shared: bool) -> None:
    env = _env(tmp_path, shared)
    manage(env, "migrate_all", "--database", "default")
    key = manage(env, "create_api_token", f"revocation-{secrets.token_hex(4)}").splitlines()[-1]
    with server(env, tmp_path, "a") as first, server(env, tmp_path, "b") as second:
        for base in (first, second):  # each process looks the token up once and remembers it
            assert _status(base, key)[0] == 200
            assert _status(base, key)[0] == 200
        manage(env, "revoke_api_token", key[:12])  # a third process
        answers = [_status(base, key) for base in (first, second)]
    if shared:
        assert [status for status, _ in answers] == [401, 401], answers
        assert all(b"revoked" in body for _, body in answers)
    else:  # each process honours what it remembers, for API_TOKEN_CACHE_SECONDS
        assert [status for status, _ in answers] == [200, 200], answers
