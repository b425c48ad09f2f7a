"""PostgreSQL (psycopg 3) with the connection circuit breaker. ENGINE ``core.db_backends.postgresql``."""

from __future__ import annotations

import datetime as dt
import functools
import select
import threading
import time
import weakref
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap, Loader
from psycopg.pq import Format, TransactionStatus

#: psycopg's own ``timestamptz`` text loader, as registered in its global adapters (the C one with
#: psycopg[binary] or [c], the Python one otherwise), through the public ``AdaptersMap.get_loader``.
_C_TIMESTAMPTZ_LOADER = psycopg.adapters.get_loader(psycopg.postgres.types["timestamptz"].oid, Format.TEXT)
from django.conf import settings
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base

from core import instrumentation
from core.db_backends import fresh
from core.db_backends.breaker import BreakerOpen, breaker_for
from routers import health

#: The psycopg pools of this process by alias (made by :attr:`DatabaseWrapper.pool`).
_POOLS: dict[str, Any] = {}
_POOLS_LOCK = threading.Lock()
#: When each pooled connection was last handed back (or made): kept here, not on psycopg's object.
_RETURNED_AT: weakref.WeakKeyDictionary[psycopg.Connection, float] = weakref.WeakKeyDictionary()


def pools() -> dict[str, Any]:
    """The psycopg pools this process made, by alias (metrics, shutdown, tests)."""
    return dict(_POOLS)


def close_pools(timeout: float = 5) -> None:
    """Close every pool of this process (a worker's exit, tests changing the settings)."""
    with _POOLS_LOCK:
        closing = list(_POOLS.values())
        _POOLS.clear()
    for pool in closing:
        pool.close(timeout=timeout)


def _mark_returned(connection: psycopg.Connection) -> None:
    """Remember when the connection was last handed back to the pool (or made)."""
    _RETURNED_AT[connection] = time.monotonic()


def _check_when_idle(connection: psycopg.Connection) -> None:
    """Pool ``check`` callback: the round trip of psycopg's ``check_connection`` only when needed.

    A connection handed back within ``DB_POOL_CHECK_AFTER_IDLE_SECONDS`` is trusted when its
    socket has nothing to read: a server that ends a session (a restart, a fast or immediate
    shutdown, ``pg_terminate_backend``, an idle timeout, a crashed backend whose kernel closes the
    socket) sends a message or an end-of-file first, which makes the socket readable, and a
    non-blocking poll sees that without a round trip. Anything else, or an older connection, is
    checked with a round trip, so a connection the server dropped is replaced, not handed out.
    Only a peer that vanishes without a packet (a cut network) goes unnoticed within the window.
    """
    from psycopg_pool import ConnectionPool

    returned = _RETURNED_AT.get(connection)
    if (
        returned is not None
        and time.monotonic() - returned < settings.DB_POOL_CHECK_AFTER_IDLE_SECONDS
        and not connection.closed
        and connection.info.transaction_status == TransactionStatus.IDLE
        and not _readable(connection)
    ):
        return
    ConnectionPool.check_connection(connection)


def _readable(connection: psycopg.Connection) -> bool:
    """True when the server sent something the client did not ask for (or closed the socket)."""
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, ValueError, psycopg.Error):
        return True  # no usable socket: let the full check decide


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
        # Django asks for the parameters on every connect(), which with a pool is every check-out,
        # and then ignores them (the pool was built with them): once the pool exists, reuse them.
        cached = getattr(self, "_pool_params", None)
        if cached is not None and cached[0] is self.settings_dict and self.alias in _POOLS:
            return dict(cached[1])  # a copy: callers may change theirs (the pool sets autocommit)
        params = self._fresh_connection_params()
        if self.settings_dict["OPTIONS"].get("pool"):
            self._pool_params = (self.settings_dict, dict(params))
        return params

    def _fresh_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        if settings.USE_TZ and self.timezone is dt.UTC and params.get("context") is not None:
            params["context"] = _with_fast_timestamps(params["context"])
        return params

    @property
    def pool(self) -> Any:
        """Django's pool (``OPTIONS["pool"]``), with a cheaper health check (``CONN_HEALTH_CHECKS``).

        Django's own pool checks every connection on every check-out with a round trip (four per
        dashboard). Here a connection handed back within ``DB_POOL_CHECK_AFTER_IDLE_SECONDS`` is
        checked by polling its socket, and only an older one with a round trip (:func:`_check_when_idle`).
        """
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        pool = _POOLS.get(self.alias)
        if pool is not None:
            return pool
        with _POOLS_LOCK:
            if self.alias in _POOLS:
                return _POOLS[self.alias]
            from psycopg_pool import ConnectionPool

            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                from django.core.exceptions import ImproperlyConfigured

                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            options = {} if pool_options is True else dict(pool_options)
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets it properly later on
            checks = self.settings_dict["CONN_HEALTH_CHECKS"]
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_and_mark,
                check=_check_when_idle if checks else None,
                **options,
            )
            _POOLS[self.alias] = pool
            return pool

    def close_pool(self) -> None:
        with _POOLS_LOCK:
            pool = _POOLS.pop(self.alias, None)
        if pool is not None:
            pool.close()

    def _close(self) -> None:
        # Marked here, on the returning thread, rather than by a pool ``reset`` callback: with a
        # reset callback psycopg's pool hands every returned connection to a background worker
        # (a thread hand-off per check-in, and the connection is not available until it ran).
        if self.connection is not None and self.pool is not None:
            _mark_returned(self.connection)
        super()._close()

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
        _mark_returned(connection)
        self.pool.putconn(connection)

    def _configure_and_mark(self, connection: psycopg.Connection) -> None:
        """Pool ``configure`` callback: Django's set-up, and a new connection counts as just used."""
        self._configure_connection(connection)
        _mark_returned(connection)

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
            if self.pool is not None:
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
