"""Helpers for deterministic race tests: threads with their own connections, a pause point, and
"wait until this thread is blocked on a database lock (or done)"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections

from core import aliases


class Runner(threading.Thread):
    """Runs ``fn`` in a thread with its own connections; keeps its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            connections.close_all()


def lock_waiters(alias: str = aliases.USERS) -> int:
    """Sessions of this database waiting for a lock now (PostgreSQL), else 0."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def settle(thread: threading.Thread, alias: str = aliases.USERS, timeout: float = 10.0) -> str:
    """Wait until ``thread`` has finished ("done") or is blocked on a lock of ``alias`` ("blocked");
    on SQLite (no lock view) a blocked thread is only seen as still running after 1 s."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while time.monotonic() < deadline:
        if not thread.is_alive():
            return "done"
        if lock_waiters(alias):
            return "blocked"
        if connections[alias].vendor != "postgresql" and time.monotonic() - started > 1.0:
            return "running"
        time.sleep(0.01)
    raise AssertionError("the thread neither finished nor blocked in time")


class Pause:
    """A point where one thread stops until the test lets it go."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.go = threading.Event()

    def __call__(self) -> None:
        self.reached.set()
        if not self.go.wait(20):
            raise AssertionError("pause never released")

    def wait(self, timeout: float = 10.0) -> None:
        assert self.reached.wait(timeout), "the pause point was never reached"
