"""Real faults for the aggregates' tests: a table locked by another connection, a database down.

Nothing here mocks a database: the lock is taken by a second real connection, and a "down"
database is the alias pointed at a port where nothing listens (PostgreSQL, MariaDB) or at a file
in a directory that does not exist (SQLite).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.db import connections


def unused_port() -> int:
    """A TCP port on loopback where nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _reset_alias(alias: str) -> None:
    """Forget every connection to ``alias``: the pool first (a worker waiting on it gives up)."""
    from core.services.fanout import close_worker_connections

    connection = connections[alias]
    connection.close()
    if connection.vendor == "postgresql":
        connection.close_pool()
    close_worker_connections()


@contextlib.contextmanager
def alias_down(alias: str) -> Iterator[None]:
    """Point ``alias`` at nowhere for the block (every thread sees it: the settings dict is shared)."""
    settings_dict = connections.settings[alias]
    saved = {key: settings_dict.get(key) for key in ("PORT", "HOST", "NAME")}
    _reset_alias(alias)
    if connections[alias].vendor == "sqlite":
        settings_dict["NAME"] = str(Path("/nonexistent-switchyard-dir") / "down.sqlite3")
    else:
        settings_dict["HOST"] = "127.0.0.1"
        settings_dict["PORT"] = str(unused_port())
    try:
        yield
    finally:
        settings_dict.update(saved)
        _reset_alias(alias)


def _psycopg_connect(alias: str) -> Any:
    import psycopg

    params = connections[alias].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    params.pop("server_side_binding", None)
    params.pop("pool", None)
    return psycopg.connect(**params)


@contextlib.contextmanager
def table_locked(alias: str, table: str) -> Iterator[None]:
    """Another PostgreSQL connection holds ``ACCESS EXCLUSIVE`` on ``table`` for the block."""
    lock_holder = _psycopg_connect(alias)
    try:
        lock_holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")  # opens a transaction
        yield
    finally:
        lock_holder.rollback()
        lock_holder.close()


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def wait_for_fanout_idle(timeout: float = 10.0) -> None:
    """Wait until no fan-out worker is busy (a stuck worker from one test must not leak into the next)."""
    from core.services import fanout

    deadline = time.monotonic() + timeout
    pool = fanout.executor()
    marker = threading.Event()
    # One task per worker: they all run only when every worker is free.
    futures = [pool.submit(marker.wait, timeout) for _ in range(fanout.max_workers())]
    while time.monotonic() < deadline and any(not f.running() and not f.done() for f in futures):
        time.sleep(0.02)
    marker.set()
    for f in futures:
        f.result(timeout=max(0.0, deadline - time.monotonic()) + 1)
