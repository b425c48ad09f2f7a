"""Run one callable per database at the same time, each within a time budget.

An aggregate asks several databases for one part each. :func:`fan_out` runs those parts
concurrently in one small thread pool shared by the whole process (``FANOUT_MAX_WORKERS``), and
answers with what it has:

- every part runs in a copy of the caller's context (:func:`routers.state.with_context`), so the
  routing state (replica choice, read-your-writes pins) and the per-alias query timings of
  :mod:`core.instrumentation` are the request's own;
- every part has a time budget that the *database* enforces, so that a slow source stops working
  instead of only being waited for: PostgreSQL ``statement_timeout`` (set on the session for the
  part and reset after it), MariaDB ``SET STATEMENT max_statement_time=... FOR <query>`` on every
  statement of the part, MySQL ``MAX_EXECUTION_TIME`` likewise, SQLite a progress handler that
  interrupts the statement after the deadline. The caller also stops waiting at budget + grace,
  which covers connecting to a server that does not answer;
- every worker thread returns the connections it used before it takes the next part (to
  psycopg's pool; closed for SQLite; a MariaDB connection with ``CONN_MAX_AGE`` is kept within
  that age, as Django does between requests; :func:`close_worker_connections` closes them all);
- a part that fails with a database error or runs out of time is *degraded*: its result is
  ``None`` and its key is listed in :attr:`FanOutResult.degraded`. A part named *essential* raises
  :class:`core.errors.SourceUnavailable` instead. Domain errors (``NotFound``) raised by a part
  reach the caller as they are.

Keys are database aliases (primaries). The worker resolves the alias to read (a replica when the
routers would choose one for this request) and passes it to the callable; a key that is not a
database (e.g. a Redis cache) gets ``None`` and only the caller's wait deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections

from core.errors import SourceUnavailable
from core.services.cached import CACHE_ERRORS
from routers import primary as primary_router
from routers import state

logger = logging.getLogger(__name__)

Part = Callable[[str | None], Any]

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def executor() -> ThreadPoolExecutor:
    """The process-wide pool (created on first use, and again in a forked child)."""
    global _pool, _pool_pid
    pid = os.getpid()
    pool = _pool
    if pool is None or _pool_pid != pid:
        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool = ThreadPoolExecutor(
                    max_workers=settings.FANOUT_MAX_WORKERS, thread_name_prefix="switchyard-fanout"
                )
                _pool_pid = pid
            pool = _pool
    return pool


def budget_for(key: str) -> float:
    """The configured budget (seconds) of the source ``key``."""
    return float(settings.FANOUT_BUDGETS.get(key, settings.FANOUT_BUDGET_SECONDS))


@dataclass
class FanOutResult:
    """What :func:`fan_out` gathered: one result per key (``None`` when degraded)."""

    results: dict[str, Any] = field(default_factory=dict)
    #: key -> milliseconds the part took (until it failed or the wait gave up)
    sources: dict[str, float] = field(default_factory=dict)
    #: keys whose part failed or ran out of time, in the order of the request
    degraded: list[str] = field(default_factory=list)
    #: key -> the error that degraded it (for logs and tests; never sent to clients)
    errors: dict[str, BaseException] = field(default_factory=dict)

    def merge(self, other: FanOutResult) -> None:
        """Add a later phase's times, degraded sources and errors (its results stay in ``other``)."""
        for key, ms in other.sources.items():
            self.sources[key] = round(self.sources.get(key, 0.0) + ms, 2)
        for key in other.degraded:
            if key not in self.degraded:
                self.degraded.append(key)
        self.errors.update(other.errors)


@dataclass
class _Outcome:
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


# --- budgets enforced by the database ---------------------------------------------------------


class BudgetExhausted(DatabaseError):
    """The part waited in the pool's queue for its whole budget and did not run."""


def _read_alias(key: str) -> str | None:
    """The alias the routers would read ``key``'s data from in this request (None: not a database)."""
    if key not in settings.DATABASES:
        return None
    if not primary_router.replicas_of(key) or state.is_pinned(key):
        return key
    return primary_router.choose_replica(key)


@contextlib.contextmanager
def _postgresql_budget(alias: str, seconds: float) -> Iterator[None]:
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    millis = max(1, int(seconds * 1000))
    # On the driver's connection, so that the bookkeeping statements are not counted as the
    # part's queries; on the session (autocommit), reset afterwards so that the pooled
    # connection goes back without it.
    with connection.wrap_database_errors:
        raw.execute(f"SET statement_timeout = {millis}")
    try:
        yield
    finally:
        if connection.connection is raw and not raw.closed:
            try:
                with connection.wrap_database_errors:
                    raw.execute("RESET statement_timeout")
            except DatabaseError:
                connection.close()


@contextlib.contextmanager
def _mysql_budget(alias: str, seconds: float) -> Iterator[None]:
    connection = connections[alias]
    connection.ensure_connection()
    server = connection.connection.get_server_info()
    if "mariadb" in server.lower():
        prefix = f"SET STATEMENT max_statement_time={seconds:.3f} FOR "

        def rewrite(sql: str) -> str:
            return prefix + sql

    else:  # MySQL: an optimizer hint, honoured by SELECT statements

        def rewrite(sql: str) -> str:
            head, _, tail = sql.lstrip().partition(" ")
            if head.upper() != "SELECT":
                return sql
            return f"SELECT /*+ MAX_EXECUTION_TIME({max(1, int(seconds * 1000))}) */ {tail}"

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        return execute(rewrite(sql), params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


@contextlib.contextmanager
def _sqlite_budget(alias: str, seconds: float) -> Iterator[None]:
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    deadline = time.monotonic() + seconds

    def past_deadline() -> int:
        return 1 if time.monotonic() > deadline else 0

    raw.set_progress_handler(past_deadline, 1000)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)


#: Errors that degrade a part (database errors, and the cache's own when the cache is not a database).
_DEGRADING_ERRORS = (DatabaseError, *CACHE_ERRORS)

_BUDGETS = {"postgresql": _postgresql_budget, "mysql": _mysql_budget, "sqlite": _sqlite_budget}


def database_budget(alias: str | None, seconds: float) -> contextlib.AbstractContextManager[None]:
    """Make the database behind ``alias`` stop this thread's statements after ``seconds``."""
    if alias is None:
        return contextlib.nullcontext()
    budget = _BUDGETS.get(connections[alias].vendor)
    if budget is None:
        return contextlib.nullcontext()
    return budget(alias, seconds)


# --- the fan-out -------------------------------------------------------------------------------


def _run_part(key: str, part: Part, deadline: float) -> _Outcome:
    """Runs in a pool thread, inside the caller's copied context."""
    started = time.perf_counter()
    outcome = _Outcome()
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BudgetExhausted(f"{key}: the budget ran out while queued")
        alias = _read_alias(key)
        with database_budget(alias, remaining):
            outcome.value = part(alias)
    except _DEGRADING_ERRORS as exc:
        outcome.error = exc
    finally:
        outcome.seconds = time.perf_counter() - started
        # Return this thread's connections before the thread takes another request's part, as
        # Django does at the end of a request: a pooled PostgreSQL connection goes back to the
        # pool, SQLite is closed, a connection with CONN_MAX_AGE (MariaDB) is kept only while it
        # is younger than that and healthy, so that a broken or old one is never reused.
        _return_connections()
    return outcome


#: Backends whose session set-up runs through Django cursors (MariaDB's ``SET SESSION
#: TRANSACTION ISOLATION LEVEL``): when such a connection is closed, this thread's wrapper is
#: dropped too, so that the next connection's set-up is not counted as one of the part's queries.
_SETUP_THROUGH_CURSORS = frozenset({"mysql"})


def _return_connections() -> None:
    close_old_connections()
    for connection in connections.all(initialized_only=True):
        if connection.connection is None and connection.vendor in _SETUP_THROUGH_CURSORS:
            del connections[connection.alias]


def fan_out(
    parts: Mapping[str, Part],
    budgets: Mapping[str, float] | None = None,
    *,
    essential: Collection[str] = (),
) -> FanOutResult:
    """Run ``parts`` (key -> callable taking the alias to read) concurrently; see the module doc.

    ``budgets`` overrides the configured budget (seconds) per key. Raises
    :class:`SourceUnavailable` when an ``essential`` part fails or runs out of time, and any
    non-database exception of a part as it is.
    """
    budgets = budgets or {}
    grace = settings.FANOUT_GRACE_SECONDS
    # Make sure the request's routing state exists before the context is copied, so that the
    # workers add their timings and routing choices to the request's own state.
    state.current()
    pool = executor()
    submitted = time.monotonic()
    futures: dict[Future[_Outcome], str] = {}
    wait_until: dict[str, float] = {}
    for key, part in parts.items():
        budget = budgets.get(key, budget_for(key))
        futures[pool.submit(state.with_context(_run_part), key, part, submitted + budget)] = key
        wait_until[key] = submitted + budget + grace

    result = FanOutResult()
    outcomes: dict[str, _Outcome] = {}
    pending = set(futures)
    while pending:
        next_deadline = min(wait_until[futures[f]] for f in pending)
        done, _ = wait(pending, timeout=max(0.0, next_deadline - time.monotonic()), return_when=FIRST_COMPLETED)
        for future in done:
            pending.discard(future)
            key = futures[future]
            outcomes[key] = outcome = future.result()  # a non-database exception propagates
            if outcome.error is not None:
                _fail(key, outcome.error, essential)
        now = time.monotonic()
        for future in [f for f in pending if wait_until[futures[f]] <= now]:
            pending.discard(future)
            future.cancel()
            key = futures[future]
            outcomes[key] = _Outcome(
                error=TimeoutError(f"no answer within {budgets.get(key, budget_for(key)) + grace:.2f}s"),
                seconds=now - submitted,
            )
            _fail(key, outcomes[key].error, essential)  # type: ignore[arg-type]

    for key in parts:  # in the caller's order
        outcome = outcomes[key]
        result.sources[key] = round(outcome.seconds * 1000, 2)
        if outcome.error is None:
            result.results[key] = outcome.value
        else:
            result.results[key] = None
            result.degraded.append(key)
            result.errors[key] = outcome.error
    return result


def _fail(key: str, error: BaseException, essential: Collection[str]) -> None:
    if key in essential:
        reason = "too slow" if _is_timeout(error) else "unavailable"
        logger.warning("essential source %s failed: %s", key, error)
        raise SourceUnavailable(key, reason) from error
    logger.warning("source %s degraded: %s", key, error)


def _is_timeout(error: BaseException) -> bool:
    if isinstance(error, (TimeoutError, BudgetExhausted)):
        return True
    text = str(error).lower()
    return "timeout" in text or "interrupted" in text or "max_statement_time" in text


def close_worker_connections(timeout: float = 10.0) -> None:
    """Close every database connection the pool's threads hold (after a settings change, in tests).

    One task per worker thread: a barrier makes sure each runs on a thread of its own.
    """
    pool = executor()
    workers = pool._max_workers
    barrier = threading.Barrier(workers, timeout=timeout)

    def close() -> None:
        connections.close_all()
        _return_connections()
        barrier.wait()

    for future in [pool.submit(close) for _ in range(workers)]:
        future.result(timeout=timeout + 1)
