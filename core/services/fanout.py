"""Run one part per source at the same time, each within a time budget.

A part (:class:`Part`) is one source's read: a queryset or a statement from an app's selector,
bound when it is made to the alias the routers choose. :func:`fan_out` runs the first part on the
calling thread (one thread hand-off less per request: in process, a dashboard's four parts cost
2.9 ms of CPU with three hand-offs and 2.4 ms all on the calling thread, so about 0.17 ms per
hand-off on this 2-core machine; the dashboard's target in issue 12 needs every one of them), as
well as every *cheap* part (a cache GET, which costs less than a hand-off: its budget is then the
cache's own timeout or the database's), and the others on a small pool shared by
the process (``FANOUT_MAX_WORKERS``), in copies of the caller's context (the routing state and the
per-alias timings behind ``Server-Timing`` are the request's), and answers with what it has:

- each part's budget (``FANOUT_BUDGETS``) is enforced by the *database*: PostgreSQL ``SET LOCAL
  statement_timeout`` in the statement's message, MariaDB ``SET STATEMENT max_statement_time``,
  MySQL ``MAX_EXECUTION_TIME``, SQLite a progress handler; the caller stops waiting for a pool
  part at budget + ``FANOUT_GRACE_SECONDS``;
- a part failing with a database (or cache) error or out of time is *degraded* (``None``, listed
  in ``degraded``); an *essential* one raises ``SourceUnavailable``; ``NotFound`` & co. propagate;
- past ``FANOUT_MAX_PER_SOURCE`` parts of one source in flight, its next one is degraded at once;
- a pool thread ends each part with Django's request-end check of its connection: kept for
  ``DB_CONN_MAX_AGE`` while healthy (a PostgreSQL one goes back to the pool with ``DB_POOL=1``),
  checked with a round trip after an error, an SQLite handle closed after an error.

The first part goes to the pool too when its connection is in a transaction (``SET LOCAL`` would
outlive the part); a server known down is refused at once there by the breaker.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, router
from django.db.models import Model, QuerySet

from core.errors import SourceUnavailable
from core.services.cached import CACHE_ERRORS
from core.services.sql import within_budget
from routers import primary as primary_router
from routers import state

logger = logging.getLogger(__name__)

#: Errors that degrade a part (database errors, and the cache's own when it is not a database).
_DEGRADING_ERRORS = (DatabaseError, *CACHE_ERRORS)


@dataclass(frozen=True)
class Part:
    """One source's work: ``run()`` reads ``alias`` only (None: not a database, e.g. Redis)."""

    alias: str | None
    run: Callable[[], Any]
    #: a read cheaper than a thread hand-off (a cache GET): run on the calling thread (module doc)
    cheap: bool = False


def query(queryset: QuerySet[Any], build: Callable[[QuerySet[Any]], Any] = list) -> Part:
    """A part that evaluates ``queryset`` (through ``build``) on the alias the routers pick now."""
    alias = queryset.db  # the routers' one decision for this part
    bound = queryset.using(alias)
    return Part(alias, lambda: build(bound))


def statement(model: type[Model], make: Callable[[str], tuple[str, Any]], build: Callable[..., Any] = list) -> Part:
    """A selector's statement (``make(alias) -> (sql, params)``) on ``model``'s read alias, built from its rows."""
    alias = router.db_for_read(model)
    sql, params = make(alias)

    def run() -> Any:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            return build(cursor.fetchall())

    return Part(alias, run)


def part(key: str, fn: Callable[[str | None], Any], *, cheap: bool = False) -> Part:
    """``fn(alias)``, ``alias`` where the routers read ``key`` (a primary) now (None: not a database)."""
    alias = primary_router.read_alias(key) if key in settings.DATABASES else None
    return Part(alias, lambda: fn(alias), cheap)


@dataclass
class FanOutResult:
    """What :func:`fan_out` gathered, by key: ``results`` (``None`` when degraded), ``sources``
    (milliseconds taken), ``degraded`` (in the request's order), ``errors`` (never sent to clients)."""

    results: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, float] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def merge(self, other: FanOutResult) -> None:
        """Add a later phase's times, degraded sources and errors (its results stay in ``other``)."""
        for key, ms in other.sources.items():
            self.sources[key] = round(self.sources.get(key, 0.0) + ms, 2)
        self.degraded.extend(key for key in other.degraded if key not in self.degraded)
        self.errors.update(other.errors)


class BudgetExhausted(DatabaseError):
    """The part waited in the pool's queue for its whole budget and did not run."""


class SourceBusy(DatabaseError):
    """Too many parts of this source are in the pool already (it is slow): not queued."""


_lock = threading.Lock()
_in_flight: dict[str, int] = {}


@functools.cache
def _executor(pid: int, workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(workers, thread_name_prefix="switchyard-fanout")


def executor() -> ThreadPoolExecutor:
    """The process-wide pool (made on first use, and again in a forked child)."""
    return _executor(os.getpid(), max_workers())


def max_workers() -> int:
    return settings.FANOUT_MAX_WORKERS


def budget_for(key: str) -> float:
    """The configured budget (seconds) of the source ``key``."""
    return float(settings.FANOUT_BUDGETS.get(key, settings.FANOUT_BUDGET_SECONDS))


def _slot(key: str, take: bool = True) -> bool:
    """Take one of ``key``'s ``FANOUT_MAX_PER_SOURCE`` slots (False when none is left), or give it back."""
    with _lock:
        if take and _in_flight.get(key, 0) >= settings.FANOUT_MAX_PER_SOURCE:
            return False
        _in_flight[key] = _in_flight.get(key, 0) + (1 if take else -1)
        return True


# --- budgets enforced by the database ----------------------------------------------------------


@contextlib.contextmanager
def _rewriting(alias: str, rewrite: Callable[[str], str], then: Callable[[Any], Any] = id) -> Iterator[None]:
    """Rewrite this thread's statements on ``alias`` in the block (``then(cursor)`` after each)."""

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if many or getattr(context["cursor"].cursor, "name", None):  # executemany, server-side cursor
            return execute(sql, params, many, context)
        result = execute(rewrite(sql), params, many, context)
        then(context["cursor"])
        return result

    wrappers = connections[alias].execute_wrappers
    wrappers.append(wrapper)
    try:
        yield
    finally:
        wrappers.remove(wrapper)  # exactly this one: the timing wrapper may come after it


@contextlib.contextmanager
def _postgresql_budget(alias: str, deadline: float) -> Iterator[None]:
    connection = connections[alias]
    if not connection.settings_dict["OPTIONS"].get("server_side_binding"):
        # ``SET LOCAL ...; <statement>``: one simple query, one implicit transaction that ends the
        # setting; ``nextset`` moves past the SET's empty result to the rows.
        with _rewriting(alias, lambda sql: within_budget(sql, deadline), lambda cursor: cursor.nextset()):
            yield
        return
    connection.ensure_connection()  # server-side binding: the session's timeout, reset afterwards
    with connection.wrap_database_errors:
        connection.connection.execute(f"SET statement_timeout = {max(1, int((deadline - time.monotonic()) * 1000))}")
    try:
        yield
    finally:
        try:
            with connection.wrap_database_errors:
                connection.connection.execute("RESET statement_timeout")
        except DatabaseError:
            connection.close()


def _mysql_budget(alias: str, deadline: float) -> contextlib.AbstractContextManager[None]:
    connection = connections[alias]
    connection.ensure_connection()
    seconds = max(0.001, deadline - time.monotonic())
    if "mariadb" in connection.connection.get_server_info().lower():
        return _rewriting(alias, lambda sql: f"SET STATEMENT max_statement_time={seconds:.3f} FOR {sql}")
    hint = f"SELECT /*+ MAX_EXECUTION_TIME({max(1, int(seconds * 1000))}) */ "  # MySQL: SELECTs only
    return _rewriting(alias, lambda sql: hint + sql.lstrip()[7:] if sql.lstrip()[:7].upper() == "SELECT " else sql)


@contextlib.contextmanager
def _sqlite_budget(alias: str, deadline: float) -> Iterator[None]:
    connections[alias].ensure_connection()
    raw = connections[alias].connection
    raw.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


_BUDGETS = {"postgresql": _postgresql_budget, "mysql": _mysql_budget, "sqlite": _sqlite_budget}


def database_budget(alias: str | None, deadline: float) -> contextlib.AbstractContextManager[None]:
    """Make the database behind ``alias`` stop this thread's statements at ``deadline`` (monotonic)."""
    budget = _BUDGETS.get(connections[alias].vendor) if alias is not None else None
    return budget(alias, deadline) if budget is not None else contextlib.nullcontext()


# --- the fan-out -------------------------------------------------------------------------------


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


def _degraded(key: str, error: BaseException, seconds: float, essential: bool) -> _Outcome:
    if essential:
        logger.warning("essential source %s failed: %s", key, error)
        raise SourceUnavailable(key, "too slow" if _is_timeout(error) else "unavailable") from error
    logger.warning("source %s degraded: %s", key, error)
    return _Outcome(error=error, seconds=seconds)


def _run(key: str, part: Part, deadline: float, essential: bool, worker: bool) -> _Outcome:
    started = time.perf_counter()
    try:
        if time.monotonic() >= deadline:
            raise BudgetExhausted(f"{key}: the budget ran out while queued")
        with database_budget(part.alias, deadline):
            value = part.run()
        return _Outcome(value=value, seconds=time.perf_counter() - started)
    except _DEGRADING_ERRORS as exc:
        return _degraded(key, exc, time.perf_counter() - started, essential)
    finally:
        _slot(key, take=False)
        if worker and part.alias is not None:
            _give_back(connections[part.alias])


def _give_back(connection: Any) -> None:
    """End of a pool thread's part: the connection goes back (to the pool, or closed)."""
    if connection.connection is not None and connection.vendor != "sqlite":
        connection.close_if_unusable_or_obsolete()
    elif connection.connection is not None and (connection.errors_occurred or connection.in_atomic_block):
        connection.close()  # an SQLite handle always counts as usable: kept until it saw an error
    if connection.connection is None and connection.vendor == "mysql":
        # MariaDB's session set-up runs through Django cursors: a fresh wrapper, so that the next
        # connection's set-up is not counted (timings) as one of the part's queries.
        del connections[connection.alias]


def fan_out(
    parts: Mapping[str, Part | Callable[[str | None], Any]],
    budgets: Mapping[str, float] | None = None,
    *,
    essential: Collection[str] = (),
) -> FanOutResult:
    """Run ``parts`` (key -> :class:`Part`, or callable taking the alias to read) concurrently.

    ``budgets`` overrides the configured budget (seconds) per key. Raises
    :class:`SourceUnavailable` when an ``essential`` part fails or runs out of time, and any
    non-database exception of a part as it is.
    """
    budgets = budgets or {}
    bound = {key: p if isinstance(p, Part) else part(key, p) for key, p in parts.items()}
    state.current()  # so that the copies of the context share the request's routing state
    context = contextvars.copy_context()
    started = time.monotonic()
    deadlines = {key: started + budgets.get(key, budget_for(key)) for key in bound}
    outcomes: dict[str, _Outcome] = {}
    futures = {}
    first = next(iter(bound), None)
    here = {key for key, p in bound.items() if key == first or p.cheap}  # run on this thread
    here = {key for key in here if bound[key].alias is None or not connections[bound[key].alias].in_atomic_block}
    for key in [k for k in bound if k not in here] + [k for k in bound if k in here]:
        if not _slot(key):
            outcomes[key] = _degraded(key, SourceBusy(f"too many parts of {key} in flight"), 0.0, key in essential)
        elif key in here:
            outcomes[key] = _run(key, bound[key], deadlines[key], key in essential, False)
        else:
            run = context.copy().run  # one context cannot be entered by two threads at once
            futures[executor().submit(run, _run, key, bound[key], deadlines[key], key in essential, True)] = key
    pending = set(futures)
    while pending:
        grace = settings.FANOUT_GRACE_SECONDS
        timeout = min(deadlines[futures[f]] for f in pending) + grace - time.monotonic()
        done, pending = wait(pending, timeout=max(0.0, timeout), return_when=FIRST_EXCEPTION)
        for future in done:
            outcomes[futures[future]] = future.result()  # SourceUnavailable, NotFound: raised
        now = time.monotonic()
        for future in [f for f in pending if deadlines[futures[f]] + grace <= now]:
            pending.discard(future)
            key = futures[future]
            if future.cancel():  # never started: its slot is released here
                _slot(key, take=False)
            error = TimeoutError(f"no answer from {key} within {budgets.get(key, budget_for(key)) + grace:.2f}s")
            outcomes[key] = _degraded(key, error, now - started, key in essential)

    result = FanOutResult()
    for key in bound:  # in the caller's order
        outcome = outcomes[key]
        result.results[key] = outcome.value
        result.sources[key] = round(outcome.seconds * 1000, 2)
        if outcome.error is not None:
            result.degraded.append(key)
            result.errors[key] = outcome.error
    return result


def _is_timeout(error: BaseException) -> bool:
    text = str(error).lower()
    down = ("refused", "could not connect", "couldn't get a connection", "is unavailable", "connection failed")
    if isinstance(error, (TimeoutError, BudgetExhausted, SourceBusy)):
        return True
    return not any(sign in text for sign in (*down, "can't connect")) and (
        "timeout" in text or "interrupted" in text or "max_statement_time" in text
    )


def close_worker_connections(timeout: float = 10.0) -> None:
    """Close the connections of every pool thread (settings changed, tests): one task per thread,
    a barrier making sure each runs on a thread of its own."""
    barrier = threading.Barrier(max_workers(), timeout=timeout)

    def close() -> None:
        for connection in connections.all(initialized_only=True):
            connection.close()
            _give_back(connection)
        barrier.wait()

    for future in [executor().submit(close) for _ in range(max_workers())]:
        future.result(timeout=timeout + 1)
