"""Process-wide record of replica health.

A replica that fails a health check (it refuses connections or a query on it fails for a
connection reason) is skipped for ``REPLICA_HEALTH_WINDOW_SECONDS``; after the window it is tried
again. The record is shared by all threads of a process and guarded by a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_failed_at: dict[str, float] = {}


def mark_failed(alias: str) -> None:
    with _lock:
        _failed_at[alias] = time.monotonic()
    logger.warning(
        "replica %s failed a health check; skipping it for %ss", alias, settings.REPLICA_HEALTH_WINDOW_SECONDS
    )


def mark_healthy(alias: str) -> None:
    with _lock:
        _failed_at.pop(alias, None)


def recently_failed(alias: str) -> bool:
    with _lock:
        failed = _failed_at.get(alias)
    if failed is None:
        return False
    return time.monotonic() - failed < settings.REPLICA_HEALTH_WINDOW_SECONDS


def clear() -> None:
    with _lock:
        _failed_at.clear()


def check(alias: str) -> bool:
    """Make sure ``alias`` has a usable connection; record the outcome. Cheap when connected.

    A replica that failed before is first probed on a fresh unpooled connection (refused at once
    while it is down) before its pool is asked for a connection: a pool whose server is gone
    makes every caller wait its whole timeout."""
    with _lock:
        failed_before = alias in _failed_at
    if failed_before:
        if not probe(alias):
            return False
        mark_healthy(alias)
    connection = connections[alias]
    try:
        if connection.connection is None:
            connection.ensure_connection()
    except DatabaseError:
        try:
            connection.close()
        except DatabaseError:
            pass
        mark_failed(alias)
        return False
    return True


def probe(alias: str) -> bool:
    """Open (and close) a fresh, unpooled connection to ``alias``; mark it failed when that fails.

    Unlike :func:`check`, this does not trust a connection the current thread already holds (it
    may be the one that just broke) and never waits for a pool slot."""
    from core.db_backends.fresh import fresh_connection

    try:
        with fresh_connection(alias) as wrapper:
            wrapper.ensure_connection()
    except DatabaseError:
        mark_failed(alias)
        return False
    return True


def connection_failed(alias: str) -> None:
    """Called by the database backends when opening a connection to ``alias`` fails (and by
    :func:`replica_guard` when a query fails for a connection reason): a replica is
    marked failed and noted in the request's routing state, so that a safe request that hit it
    (say, while it was shutting down) is answered again from the primary."""
    from core import aliases
    from routers import state

    if aliases.primary_of(alias) != alias:
        mark_failed(alias)
        state.current().failed_replicas.add(alias)


def replica_guard(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Execute wrapper on replica connections: a query that fails for a connection reason
    (the replica went away mid-request) marks the replica failed and is noted in the request's
    routing state, so that the routing middleware can answer a safe request again from the primary."""
    try:
        return execute(sql, params, many, context)
    except (OperationalError, InterfaceError):
        connection_failed(context["connection"].alias)
        raise


def query_failed(alias: str, error: BaseException) -> None:
    """What :func:`replica_guard` does, for statements sent past Django's execute wrappers."""
    if isinstance(error, (OperationalError, InterfaceError)):
        connection_failed(alias)


def _install_guard(sender: Any, connection: Any, **kwargs: Any) -> None:
    from core import aliases

    if aliases.primary_of(connection.alias) != connection.alias and replica_guard not in connection.execute_wrappers:
        connection.execute_wrappers.append(replica_guard)


def connect() -> None:
    """Install :func:`replica_guard` on every new replica connection. Done when this module is
    imported, which the routers and the routing middleware do before any read reaches a replica."""
    from django.db.backends.signals import connection_created

    connection_created.connect(_install_guard, dispatch_uid="switchyard-replica-guard")


connect()
