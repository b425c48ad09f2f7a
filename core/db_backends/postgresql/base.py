"""PostgreSQL (psycopg 3) with the connection circuit breaker. ENGINE ``core.db_backends.postgresql``.

Connections (issue 12): by default each thread keeps its connection to an alias across requests
(``CONN_MAX_AGE`` = ``DB_CONN_MAX_AGE``), checked at the start of each request that uses it
(``CONN_HEALTH_CHECKS``) by :meth:`DatabaseWrapper.is_usable`: a connection that served a request
within ``DB_CHECK_AFTER_IDLE_SECONDS`` is trusted when its socket has nothing to read (a server
that ends a session - a restart, a shutdown, ``pg_terminate_backend``, an idle timeout - sends a
message or closes the socket first, which a non-blocking poll sees), anything else is checked with
Django's round trip (``SELECT 1``). Only a peer that vanishes without a packet (a cut network)
goes unnoticed within the window; the request then fails once (503) and the connection is
replaced.

Measured against Django's pool (``DB_POOL=1``, which stays available: its ``pool`` property and
``close_pool()`` as Django ships them, with the round trip of psycopg_pool's ``check_connection``
on every check-out) in process on the 2-core machine of the benchmarks, a routed user read with
the request's connection handling: 617 us of CPU with the pool (a check-out, the round trip,
Django's connection set-up and ``connection_created``, a check-in per request and alias), against
~440 us kept per thread (figures and the yardstick in bench/README.md). What it costs: one
connection per thread and alias (gunicorn threads plus fan-out threads, per worker) instead of a
pool's ``max_size``; size ``max_connections`` (or PgBouncer) for that.

This module adds the breaker around making connections and psycopg's C parser for ``timestamptz``.
"""

from __future__ import annotations

import datetime as dt
import functools
import select
import time
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format, TransactionStatus

#: psycopg's own ``timestamptz`` text loader, as registered in its global adapters (the C one with
#: psycopg[binary] or [c], the Python one otherwise), through the public ``AdaptersMap.get_loader``.
_C_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, Format.TEXT)
from django.conf import settings
from django.db import connections
from django.db.backends.postgresql import base

from core import instrumentation
from core.db_backends import fresh
from core.db_backends.breaker import BreakerOpen, breaker_for
from routers import health

#: The pools this process connected through, by alias: Django's own (its public ``pool`` property),
#: noted when a connection is made, so that listing them never builds one (a pool built before the
#: test databases are set up would point at the configured database names).
_USED_POOLS: dict[str, Any] = {}


def pools() -> dict[str, Any]:
    """The open psycopg pools this process connected through, by alias (metrics, the fan-out, tests)."""
    return {alias: pool for alias, pool in list(_USED_POOLS.items()) if not pool.closed}


def close_pools() -> None:
    """Close every pool of this process (a worker's exit, tests changing the settings)."""
    for alias in list(_USED_POOLS):
        if _USED_POOLS.pop(alias).closed:
            continue
        connections[alias].close_pool()


class UtcTimestamptzLoader(Loader):
    """``timestamptz`` values as aware UTC datetimes, parsed by psycopg's C loader.

    Django registers a Python subclass of psycopg's ``TimestamptzLoader`` (to pin the tzinfo),
    which makes psycopg parse every timestamp in Python: about twice the cost of the C parser,
    felt on list pages (two timestamps per row). With ``USE_TZ`` and UTC connections (Django sets
    the session's TimeZone to UTC), the C loader already gives ``datetime.timezone.utc`` values;
    anything else is converted, so the result is always what Django's loader gives. ``timezone``
    is what Django's ``create_cursor`` compares with its own before overriding a cursor's loader.
    """

    timezone = dt.UTC

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        self._parse = _C_TIMESTAMPTZ_LOADER(oid, context).load

    def load(self, data: Any) -> dt.datetime:
        value = self._parse(data)
        return value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)


@functools.lru_cache
def _with_fast_timestamps(template: Any) -> Any:
    adapters = AdaptersMap(template)
    adapters.register_loader("timestamptz", UtcTimestamptzLoader)
    return adapters


def _readable(connection: psycopg.Connection) -> bool:
    """True when the server sent something the client did not ask for (or closed the socket)."""
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True  # no usable socket: let the round trip decide


class DatabaseWrapper(base.DatabaseWrapper):
    #: when this thread's connection last answered a round trip of the health check, or was made
    #: (monotonic; 0: never)
    checked_at = 0.0

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if settings.USE_TZ and self.timezone is dt.UTC and params.get("context") is not None:
            params["context"] = _with_fast_timestamps(params["context"])
        return params

    def is_usable(self) -> bool:
        """Django's health check (``CONN_HEALTH_CHECKS``): a socket poll for a connection that
        answered a round trip within ``DB_CHECK_AFTER_IDLE_SECONDS`` (module doc), Django's
        ``SELECT 1`` otherwise (and after any error on the connection)."""
        connection = self.connection
        now = time.monotonic()
        if (
            connection is not None
            and not self.errors_occurred
            and now - self.checked_at < settings.DB_CHECK_AFTER_IDLE_SECONDS
            and not connection.closed
            and connection.info.transaction_status == TransactionStatus.IDLE
            and not _readable(connection)
        ):
            return True
        usable = super().is_usable()
        if usable:
            self.checked_at = now
        return usable

    def _probe(self) -> None:
        fresh.probe(self, base.DatabaseWrapper)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = self._through_breaker(lambda: super(DatabaseWrapper, self).get_new_connection(conn_params))
        self.checked_at = time.monotonic()  # it just answered the server's handshake
        return connection

    def _through_breaker(self, connect: Any) -> Any:
        """``connect()`` unless the breaker knows the server down; its failures open the breaker.

        A pool that is merely busy (every connection it may open in use: ``PoolTimeout`` at
        ``max_size``) says nothing about the server: the caller gets the error, the breaker stays
        closed (opening it would fail every request for its window because of a burst).
        """
        breaker = breaker_for(self.alias, self.settings_dict)
        started = time.perf_counter()
        try:
            breaker.allow(self._probe)
            pool = self.pool
            if pool is not None:
                _USED_POOLS[self.alias] = pool
                breaker.first_contact(self._probe)
        except BreakerOpen as exc:
            # A failed attempt still counts as time on this alias (Server-Timing, metrics).
            instrumentation.record(self.alias, time.perf_counter() - started, failed=True)
            health.connection_failed(self.alias)
            raise psycopg.OperationalError(str(exc)) from exc
        try:
            connection = connect()
        except psycopg.Error as exc:
            instrumentation.record(self.alias, time.perf_counter() - started, failed=True)
            if not self._pool_busy(exc):
                breaker.failure(exc, time.perf_counter() - started)
                health.connection_failed(self.alias)
            raise
        breaker.success()
        return connection

    def _pool_busy(self, exc: psycopg.Error) -> bool:
        from psycopg_pool import PoolTimeout

        pool = self.pool
        if not isinstance(exc, PoolTimeout) or pool is None:
            return False
        try:
            return pool.get_stats().get("pool_size", 0) >= pool.max_size
        except Exception:  # noqa: BLE001 - a closed pool: not merely busy
            return False
