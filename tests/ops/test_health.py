"""Liveness and readiness probes on the real engines (and the embedded SQLite default).

Faults are real: an alias pointed at a TCP port nobody listens on (or, for SQLite, a file in a
directory that does not exist), and a TCP server that accepts connections and never answers.
"""

from __future__ import annotations

import copy
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from core import aliases

ALL_DATABASES = list(settings.DATABASES)

pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES:UserWarning")


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable(alias: str, port: int | None = None) -> dict[str, Any]:
    """``alias``'s settings pointed somewhere that refuses (or, with ``port``, hangs)."""
    db = copy.deepcopy(settings.DATABASES[alias])
    if "sqlite" in db["ENGINE"]:
        db["NAME"] = str(settings.VAR_DIR / "no-such-directory" / "gone.sqlite3")
    else:
        db["HOST"] = "127.0.0.1"
        db["PORT"] = port or closed_port()
    return db


@contextmanager
def broken(alias: str, port: int | None = None, **extra: Any) -> Iterator[None]:
    databases = {**settings.DATABASES, alias: unreachable(alias, port)}
    with override_settings(DATABASES=databases, **extra):
        yield


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never says a word (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def get_ready(**headers: str) -> tuple[Any, dict[str, Any], float]:
    started = time.monotonic()
    response = APIClient().get("/health/ready", **headers)
    return response, response.json(), time.monotonic() - started


def check_of(body: dict[str, Any], alias: str) -> dict[str, Any]:
    entries = body["checks"][f"{alias}:responseTime"]
    assert len(entries) == 1
    return entries[0]


def test_liveness_answers_without_touching_a_database() -> None:
    # No django_db mark: any database access in this test raises.
    response = APIClient().get("/health")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/health+json"
    assert response.json() == {"status": "pass"}


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_ready_checks_every_alias_replicas_included() -> None:
    with override_settings(READINESS_REQUIRED_ALIASES=[aliases.DEFAULT, aliases.USERS]):
        response, body, _ = get_ready()
    assert response.status_code == 200, body
    assert response["Content-Type"] == "application/health+json"
    assert response["Cache-Control"] == "no-store"
    assert body["status"] == "pass"
    assert sorted(key.split(":")[0] for key in body["checks"]) == sorted(settings.DATABASES)
    for alias in settings.DATABASES:
        entry = check_of(body, alias)
        assert entry["componentId"] == alias
        assert entry["status"] == "pass"
        assert entry["required"] is (alias in (aliases.DEFAULT, aliases.USERS))
        assert entry["observedUnit"] == "ms"
        assert 0 < entry["time_ms"] == entry["observedValue"] < 2000
        observed = dt.datetime.fromisoformat(entry["time"])
        assert abs((dt.datetime.now(dt.UTC) - observed).total_seconds()) < 30
        assert "output" not in entry


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_ready_ignores_accept_and_needs_no_token() -> None:
    response, body, _ = get_ready(HTTP_ACCEPT="text/html")
    assert response.status_code == 200, body
    assert response["Content-Type"] == "application/health+json"


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_required_alias_on_a_closed_port_is_503_naming_it_within_the_timeout() -> None:
    timeout = 1.0
    with broken(
        aliases.ANALYTICS,
        READINESS_TIMEOUT_SECONDS=timeout,
        READINESS_REQUIRED_ALIASES=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS],
    ):
        response, body, elapsed = get_ready()
    assert response.status_code == 503, body
    assert response["Content-Type"] == "application/health+json"
    assert elapsed < timeout + 1.0
    assert body["status"] == "fail"
    assert aliases.ANALYTICS in body["output"]
    failed = check_of(body, aliases.ANALYTICS)
    assert failed["status"] == "fail"
    assert failed["required"] is True
    assert failed["output"] in {"connection refused", "database missing"}  # PostgreSQL, SQLite
    assert "127.0.0.1" not in response.content.decode()  # no addresses for unauthenticated callers
    others = [alias for alias in settings.DATABASES if alias != aliases.ANALYTICS]
    assert [check_of(body, alias)["status"] for alias in others] == ["pass"] * len(others)


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_optional_alias_down_is_a_warning_and_still_ready() -> None:
    with broken(aliases.LEGACY, READINESS_REQUIRED_ALIASES=[aliases.DEFAULT, aliases.USERS]):
        response, body, _ = get_ready()
    assert response.status_code == 200, body
    assert body["status"] == "warn"
    entry = check_of(body, aliases.LEGACY)
    assert entry["status"] == "warn"
    assert entry["required"] is False
    assert aliases.LEGACY in body["output"]


@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_probe_recovers_when_the_database_returns() -> None:
    with broken(aliases.USERS, READINESS_REQUIRED_ALIASES=[aliases.USERS]):
        down, _, _ = get_ready()
    with override_settings(READINESS_REQUIRED_ALIASES=[aliases.USERS]):
        up, body, _ = get_ready()
    assert (down.status_code, up.status_code) == (503, 200), body


def readiness_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("readiness-")]


@pytest.mark.real_engines
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_a_hung_database_cannot_hang_the_probe() -> None:
    timeout = 0.5
    with (
        silent_server() as port,
        broken(
            aliases.ANALYTICS,
            port=port,
            READINESS_TIMEOUT_SECONDS=timeout,
            READINESS_REQUIRED_ALIASES=[aliases.ANALYTICS],
        ),
    ):
        first, body, elapsed = get_ready()
        assert first.status_code == 503, body
        assert elapsed < timeout + 1.0
        assert check_of(body, aliases.ANALYTICS)["output"] == f"timed out after {timeout:g}s"
        stuck = [t.name for t in readiness_threads()]
        assert stuck == [f"readiness-{aliases.ANALYTICS}"]
        # A second probe while the first check still hangs does not start another thread.
        second, body, elapsed = get_ready()
        assert second.status_code == 503
        assert elapsed < timeout + 1.0
        assert "still waiting" in check_of(body, aliases.ANALYTICS)["output"]
        assert [t.name for t in readiness_threads()] == stuck
    # The server is gone: the stuck check fails fast and its thread ends.
    deadline = time.monotonic() + 10
    while readiness_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert readiness_threads() == []
    with override_settings(READINESS_REQUIRED_ALIASES=[aliases.ANALYTICS]):
        third, body, _ = get_ready()
    assert third.status_code == 200, body


def test_a_failed_check_names_the_kind_of_failure_not_where_the_database_lives():
    from api.health import public_reason

    refused = Exception('connection to server at "10.1.2.3", port 6543 failed: Connection refused')
    assert public_reason(refused) == "connection refused"
    assert public_reason(Exception("canceling statement due to statement timeout")) == "timed out"
    assert public_reason(Exception('FATAL: password authentication failed for user "app"')) == "authentication failed"
    assert public_reason(Exception('database "secret_db" does not exist')) == "database missing"
    for text in (public_reason(refused), public_reason(Exception("weird"))):
        assert "10.1.2.3" not in text and "6543" not in text
