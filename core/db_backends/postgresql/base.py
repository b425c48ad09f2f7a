"""PostgreSQL (psycopg 3) with the connection circuit breaker. ENGINE ``core.db_backends.postgresql``.

The pool is Django's own (``OPTIONS["pool"]``, its public ``pool`` property and ``close_pool()``);
this module adds the breaker around making and checking out connections, psycopg's C parser for
``timestamptz``, and :meth:`DatabaseWrapper.checkout` / :meth:`~DatabaseWrapper.checkin` for
statements sent outside Django's cursors.

What using Django's pool as it is costs (issue 12 removed a copy of its ``pool`` property that
built the pool with a cheaper check): with ``CONN_HEALTH_CHECKS`` the pool checks every connection
it hands out with a round trip (psycopg_pool's ``check_connection``), about 47 us of wall time and
26 us of client CPU on loopback on the 2-core machine of the benchmarks, plus the server's share:
one per request that touches PostgreSQL, one per part of an aggregate (four per dashboard). The
copy skipped the round trip for a connection handed back within 5 s whose socket had nothing to
read (``DB_POOL_CHECK_AFTER_IDLE_SECONDS``, gone with it); a dropped connection is still replaced,
not handed out.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format

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


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if settings.USE_TZ and self.timezone is dt.UTC and params.get("context") is not None:
            params["context"] = _with_fast_timestamps(params["context"])
        return params

    def checkout(self, timeout: float) -> psycopg.Connection:
        """A connection straight from the pool, for statements sent outside Django's cursors
        (:mod:`core.services.multiplex`); give it back with :meth:`checkin`.

        Django's ``connect()`` repeats its set-up on every check-out (autocommit, the time zone,
        the isolation level, ``connection_created``), which the pool's ``configure`` callback
        already did once for the connection; a statement sent on the bare connection in an
        implicit transaction needs none of it. Waits at most ``timeout`` seconds for a connection;
        the breaker and the failure records are those of :meth:`get_new_connection`.
        """
        return self._through_breaker(lambda: self.pool.getconn(timeout=timeout))

    def checkin(self, connection: psycopg.Connection) -> None:
        """Hand back a connection from :meth:`checkout` (the pool discards one that is not idle)."""
        self.pool.putconn(connection)

    def _probe(self) -> None:
        fresh.probe(self, base.DatabaseWrapper)

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        return self._through_breaker(lambda: super(DatabaseWrapper, self).get_new_connection(conn_params))

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
