"""Run one callable per database at the same time, each within a time budget.

An aggregate asks several databases for one part each. :func:`fan_out` runs those parts
concurrently in one small thread pool shared by the whole process (``FANOUT_MAX_WORKERS``), and
answers with what it has:

- every part runs in a copy of the caller's context (:func:`routers.state.with_context`), so the
  routing state (replica choice, read-your-writes pins) and the per-alias query timings of
  :mod:`core.instrumentation` are the request's own;
- every part has a time budget that the *database* enforces, so that a slow source stops working
  instead of only being waited for: PostgreSQL ``SET LOCAL statement_timeout`` sent with each
  statement (same message, no extra round trip), MariaDB ``SET STATEMENT max_statement_time=...
  FOR <statement>``, MySQL a ``MAX_EXECUTION_TIME`` hint, SQLite a progress handler that
  interrupts the statement after the deadline. The caller also stops waiting at budget + grace,
  which covers connecting to a server that does not answer;
- every worker thread returns the connections it used before it takes the next part, as Django
  does at the end of a request: to psycopg's pool (PostgreSQL); a MariaDB connection with
  ``CONN_MAX_AGE`` is kept within that age; an SQLite file handle stays open per worker thread
  while healthy (nothing to return it to, and reopening costs more than the query); a connection
  that saw an error is closed. :func:`close_worker_connections` closes them all;
- one source cannot take the whole pool: when ``FANOUT_MAX_PER_SOURCE`` of its parts are
  already running or queued (it is slow), its next part is degraded at once (a bulkhead);
- a part that fails with a database error or runs out of time is *degraded*: its result is
  ``None`` and its key is listed in :attr:`FanOutResult.degraded`. A part named *essential* raises
  :class:`core.errors.SourceUnavailable` instead. Domain errors (``NotFound``) raised by a part
  reach the caller as they are.

A part given as a :class:`Select` (one statement, its value built from the rows) on PostgreSQL
does not take a pool thread when a connection is at hand: the calling thread sends every such
statement at once and reads the answers as they arrive (:mod:`core.services.multiplex`), and
runs the parts on local connections (SQLite) meanwhile; the same budgets, errors and timings.

Keys are database aliases (primaries). The worker resolves the alias to read (a replica when the
routers would choose one for this request) and passes it to the callable; a key that is not a
database (e.g. a Redis cache) gets ``None`` and only the caller's wait deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from core import instrumentation
from core.db_backends import breaker
from core.db_backends.postgresql import base as postgresql_backend
from core.errors import SourceUnavailable
from core.services import multiplex
from core.services.cached import CACHE_ERRORS
from core.services.sql import within_budget
from routers import health, state
from routers import primary as primary_router

logger = logging.getLogger(__name__)

Part = Callable[[str | None], Any]

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_workers = 0


def max_workers() -> int:
    """How many threads the process-wide pool runs (``FANOUT_MAX_WORKERS`` when it was made)."""
    executor()
    return _pool_workers


def executor() -> ThreadPoolExecutor:
    """The process-wide pool (created on first use, and again in a forked child)."""
    global _pool, _pool_pid, _pool_workers
    pid = os.getpid()
    pool = _pool
    if pool is None or _pool_pid != pid:
        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool_workers = settings.FANOUT_MAX_WORKERS
                _pool = ThreadPoolExecutor(max_workers=_pool_workers, thread_name_prefix="switchyard-fanout")
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


@dataclass(frozen=True)
class Select:
    """A part that is one SELECT: ``build(rows)`` makes the part's value from its rows.

    Given to :func:`fan_out` instead of a callable, it lets the fan-out send the statement itself:
    when its database is PostgreSQL and a connection is at hand without waiting (held by the
    caller, or idle in the pool), the statement is sent by the calling thread together with the
    other such parts and their answers are read as they come (:mod:`core.services.multiplex`):
    concurrent, with no worker thread. Otherwise it runs in the pool like any part:
    ``build(select_rows(alias, sql, params))``. ``params`` may be a callable taking the alias
    (for values whose form depends on the driver, see :func:`core.services.sql.datetime_param`).
    ``build`` may raise a domain error (``NotFound``); it reaches the caller as it is.
    """

    sql: str
    params: Sequence[Any] | Callable[[str], Sequence[Any]]
    build: Callable[[list[tuple[Any, ...]]], Any]

    def params_for(self, alias: str) -> Sequence[Any]:
        return self.params(alias) if callable(self.params) else self.params

    def __call__(self, alias: str | None) -> Any:
        if alias is None:
            raise TypeError("a Select part needs a database alias as its key")
        return self.build(select_rows(alias, self.sql, self.params_for(alias)))


# --- budgets enforced by the database ---------------------------------------------------------


class BudgetExhausted(DatabaseError):
    """The part waited in the pool's queue for its whole budget and did not run."""


class SourceBusy(DatabaseError):
    """Too many parts of this source are in the pool already (it is slow): not queued."""


_slots_lock = threading.Lock()
_in_flight: dict[str, int] = {}


def _take_slot(key: str) -> bool:
    with _slots_lock:
        if _in_flight.get(key, 0) >= settings.FANOUT_MAX_PER_SOURCE:
            return False
        _in_flight[key] = _in_flight.get(key, 0) + 1
        return True


def _release_slot(key: str) -> None:
    with _slots_lock:
        _in_flight[key] -= 1


def _read_alias(key: str) -> str | None:
    """The alias the routers would read ``key``'s data from in this request (None: not a database)."""
    if key not in settings.DATABASES:
        return None
    if not primary_router.replicas_of(key) or state.is_pinned(key):
        return key
    return primary_router.choose_replica(key)


@contextlib.contextmanager
def _wrapped(connection: Any, wrapper: Callable[..., Any]) -> Iterator[None]:
    """Like ``connection.execute_wrapper`` but removes exactly ``wrapper`` afterwards (the timing
    wrapper may be appended after it when the part's first query opens the connection)."""
    connection.execute_wrappers.append(wrapper)
    try:
        yield
    finally:
        connection.execute_wrappers.remove(wrapper)


@contextlib.contextmanager
def _postgresql_budget(alias: str, seconds: float) -> Iterator[None]:
    """``SET LOCAL statement_timeout`` in front of every statement of the part, in the same message.

    Django's psycopg cursors bind parameters on the client, so ``SET LOCAL ...; <statement>`` goes
    to the server as one simple query: one implicit transaction, no extra round trip, and the
    setting ends with it (nothing is left on the pooled connection, whether the statement
    succeeds or is cancelled). Each statement gets what is left of the part's budget.
    """
    connection = connections[alias]
    if connection.settings_dict["OPTIONS"].get("server_side_binding"):
        with _postgresql_session_budget(alias, seconds):
            yield
        return
    deadline = time.monotonic() + seconds
    deadlines = _pg_deadlines()
    outer = deadlines.get(alias)
    deadlines[alias] = deadline  # for :func:`select_rows`, which does not go through the wrappers

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if many or getattr(context["cursor"].cursor, "name", None):
            # executemany, or a server-side cursor (DECLARE ... FOR <one statement>): sent as is;
            # such a statement has only the caller's wait deadline.
            return execute(sql, params, many, context)
        result = execute(within_budget(sql, deadline), params, many, context)
        context["cursor"].nextset()  # past the SET's empty result, to the statement's rows
        return result

    _BUDGET_WRAPPERS.add(wrapper)  # select_rows applies the budget itself
    try:
        with _wrapped(connection, wrapper):
            yield
    finally:
        _BUDGET_WRAPPERS.discard(wrapper)
        if outer is None:
            deadlines.pop(alias, None)
        else:
            deadlines[alias] = outer


_thread_state = threading.local()
#: The budget wrappers in use (the lean statement paths apply the budget themselves).
_BUDGET_WRAPPERS: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def _pg_deadlines() -> dict[str, float]:
    """This thread's PostgreSQL budget deadlines by alias (set while a part runs)."""
    try:
        return _thread_state.deadlines
    except AttributeError:
        _thread_state.deadlines = {}
        return _thread_state.deadlines


def select_rows(alias: str, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """``cursor.execute(sql, params); cursor.fetchall()`` for a part's one SELECT, leaner on PostgreSQL.

    The parts of the hot aggregates (the dashboard) run one small statement each; through
    Django's cursor a statement also passes Django's cursor wrappers and the execute-wrapper
    chain (the budget's and the timing's), which cost about as much as the round trip. Here, on
    PostgreSQL, the statement goes to the driver's cursor with the same budget prefix
    (``SET LOCAL statement_timeout``), the same error translation (Django's ``DatabaseError``
    family, and the connection marked as having seen an error) and the same timing record.
    Anywhere else, while queries are being logged (``DEBUG``, ``CaptureQueriesContext``), or when
    the connection has execute wrappers of its own (tracing, fault injection), it is plain Django.
    """
    connection = connections[alias]
    if connection.vendor != "postgresql" or connection.queries_logged or _foreign_wrappers(connection):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    connection.ensure_connection()
    deadline = _pg_deadlines().get(alias)
    if deadline is not None:
        sql = within_budget(sql, deadline)
    started = time.perf_counter()
    failed = True
    try:
        with connection.wrap_database_errors, connection.connection.cursor() as cursor:
            cursor.execute(sql, params)
            if deadline is not None:
                cursor.nextset()
            rows = cursor.fetchall()
        failed = False
        return rows
    except DatabaseError as exc:
        health.query_failed(alias, exc)  # a replica lost mid-read: answered again from the primary
        raise
    finally:
        instrumentation.record(alias, time.perf_counter() - started, failed)


def _foreign_wrappers(connection: Any) -> bool:
    """Execute wrappers the lean statement paths would skip: any but the project's own (timing,
    budgets, and the replica guard, whose work they do themselves)."""
    return any(
        wrapper is not instrumentation.timing_wrapper
        and wrapper not in _BUDGET_WRAPPERS
        and wrapper is not health.replica_guard
        for wrapper in connection.execute_wrappers
    )


@contextlib.contextmanager
def _postgresql_session_budget(alias: str, seconds: float) -> Iterator[None]:
    """With server-side binding (one statement per message): set the session's timeout, reset it."""
    connection = connections[alias]
    connection.ensure_connection()
    raw = connection.connection
    millis = max(1, int(seconds * 1000))
    # On the driver's connection, so that the bookkeeping statements are not counted as the
    # part's queries; reset afterwards so that the pooled connection goes back without it.
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

    with _wrapped(connection, wrapper):
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


class _EssentialFailed(Exception):
    """An essential part failed: raised through its future so that the caller wakes at once."""

    def __init__(self, outcome: _Outcome) -> None:
        self.outcome = outcome
        super().__init__(str(outcome.error))


def _run_part(
    key: str, part: Part, deadline: float, essential: bool, alias: str | None = None, inline: bool = False
) -> _Outcome:
    """Runs a part in a pool thread (inside the caller's copied context), or ``inline`` on the
    calling thread on a connection that thread already holds."""
    started = time.perf_counter()
    outcome = _Outcome()
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BudgetExhausted(f"{key}: the budget ran out while queued")
        if not inline:
            alias = _read_alias(key)
        with database_budget(alias, remaining):
            outcome.value = part(alias)
    except _DEGRADING_ERRORS as exc:
        outcome.error = exc
        if essential:
            raise _EssentialFailed(outcome) from exc
    finally:
        outcome.seconds = time.perf_counter() - started
        if not inline and alias is not None:
            # Give back this thread's connection before it takes another request's part. A part
            # reads only the alias it is given (the contract of :func:`fan_out`).
            _return_connection(connections[alias])
    return outcome


def _at_hand(connection: Any, *, pooled: bool = False, local: bool = False) -> bool | None:
    """Whether the calling thread can use ``alias``'s connection without waiting: False when it
    holds one, healthy and outside any transaction (it keeps it); True when it can get one at
    once: an idle one in the pool of a PostgreSQL database not known to be down (``pooled``), or
    an SQLite file (``local``); None otherwise. Connecting, the one wait a budget cannot bound,
    is never in the way."""
    if connection.connection is not None:
        return False if _healthy_idle(connection) else None
    if local and connection.vendor == "sqlite":
        return True
    if pooled and _idle_in_pool(connection):
        return True
    return None


def _inline_candidate(parts: Mapping[str, Part]) -> tuple[str, str, bool] | None:
    """A part the calling thread can run itself, saving a thread hand-off: ``(key, alias, opened)``.

    First choice, a part whose connection the caller holds (``opened`` False: the caller keeps
    it); otherwise one on a pooled PostgreSQL database with an idle connection (``opened`` True:
    it goes back to the pool after the part), see :func:`_at_hand`. The part's statements are
    still bounded by the database."""
    fallback = None
    for key in parts:
        alias = _read_alias(key)
        if alias is None:
            continue
        opened = _at_hand(connections[alias], pooled=True)
        if opened is False:
            return key, alias, False
        if opened and fallback is None:
            fallback = (key, alias, True)
    return fallback


def _multiplexable(key: str) -> tuple[str, bool] | None:
    """Where the calling thread can send ``key``'s :class:`Select` itself: ``(alias, from_pool)``.

    On PostgreSQL with client-side binding, not while queries are being logged or foreign
    execute wrappers are installed (they must see the statement: tracing, injected faults), and
    only on a connection at hand (:func:`_at_hand`): the caller's own (``from_pool`` False), or
    one idle in the pool (``from_pool`` True: checked out for the statement alone, see
    :meth:`core.db_backends.postgresql.base.DatabaseWrapper.checkout`)."""
    alias = _read_alias(key)
    if alias is None:
        return None
    connection = connections[alias]
    if (
        connection.vendor != "postgresql"
        or connection.settings_dict["OPTIONS"].get("server_side_binding")
        or connection.queries_logged
        or _foreign_wrappers(connection)
    ):
        return None
    from_pool = _at_hand(connection, pooled=hasattr(connection, "checkout"))
    return None if from_pool is None else (alias, from_pool)


def _local_parts(parts: Mapping[str, Part], skip: Collection[str]) -> list[tuple[str, str, bool]]:
    """The parts (not in ``skip``) the calling thread can run while its statements are in flight:
    ``(key, alias, opened)`` for each part on a connection it holds (``opened`` False) or on an
    SQLite file (opened at once; ``opened`` True), see :func:`_at_hand`. Its statements keep
    their budget."""
    local = []
    for key in parts:
        if key in skip or (alias := _read_alias(key)) is None:
            continue
        opened = _at_hand(connections[alias], local=True)
        if opened is not None:
            local.append((key, alias, opened))
    return local


def _run_multiplexed(
    selects: Mapping[str, tuple[Select, str, bool]],
    submitted: float,
    budgets: Mapping[str, float],
    grace: float,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, _Outcome]:
    """Run the :class:`Select` parts on the calling thread, all in flight at once (and
    ``meanwhile`` once they are sent)."""
    statements = []
    for key, (part, alias, from_pool) in selects.items():
        deadline = submitted + budgets.get(key, budget_for(key))
        statements.append(
            multiplex.Statement(
                key, alias, part.sql, part.params_for(alias), deadline, deadline + grace, held=not from_pool
            )
        )
    multiplex.run(statements, meanwhile)
    outcomes: dict[str, _Outcome] = {}
    for statement in statements:
        outcome = outcomes[statement.key] = _Outcome(error=statement.error, seconds=statement.seconds)
        if statement.error is None:
            outcome.value = selects[statement.key][0].build(statement.rows or [])
    return outcomes


def _idle_in_pool(connection: Any) -> bool:
    if connection.vendor != "postgresql":
        return False
    pool = postgresql_backend.pools().get(connection.alias)
    if pool is None or breaker.is_open(connection.alias):
        return False
    try:
        return pool.get_stats().get("pool_available", 0) > 0
    except Exception:  # noqa: BLE001 - a closed pool, say: not a candidate
        return False


#: Backends whose session set-up runs through Django cursors (MariaDB's ``SET SESSION
#: TRANSACTION ISOLATION LEVEL``): when such a connection is closed, this thread's wrapper is
#: dropped too, so that the next connection's set-up is not counted as one of the part's queries.
_SETUP_THROUGH_CURSORS = frozenset({"mysql"})


def _return_connections() -> None:
    for connection in connections.all(initialized_only=True):
        _return_connection(connection)


def _return_connection(connection: Any) -> None:
    if connection.connection is not None:
        if connection.vendor == "sqlite":
            # An SQLite connection is a file handle, not a server's connection: there is nothing
            # to return it to, and opening one again (Django registers its SQL functions, runs
            # the PRAGMAs) costs more than the part's query. Kept per worker thread (at most
            # FANOUT_MAX_WORKERS of them); closed once it has seen an error (Django would keep
            # it: an SQLite handle always counts as usable).
            if not _healthy_idle(connection):
                connection.close()
            return
        connection.close_if_unusable_or_obsolete()
    if connection.connection is None and connection.vendor in _SETUP_THROUGH_CURSORS:
        del connections[connection.alias]


def _healthy_idle(connection: Any) -> bool:
    return (
        connection.connection is not None
        and not connection.errors_occurred
        and not connection.in_atomic_block
        and connection.get_autocommit()
    )


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
    context = contextvars.copy_context()
    pool = executor()
    multiplexed: dict[str, tuple[Select, str, bool]] = {}
    for key, part in parts.items():
        if isinstance(part, Select) and (where := _multiplexable(key)) is not None:
            multiplexed[key] = (part, *where)
    # Parts the calling thread runs itself, saving a thread hand-off each: while statements are
    # in flight, every part on a connection at hand at once; otherwise one part (see there).
    if multiplexed:
        local = _local_parts(parts, skip=multiplexed)
    else:
        local = [inline] if len(parts) > 1 and (inline := _inline_candidate(parts)) is not None else []
    submitted = time.monotonic()
    futures: dict[Future[_Outcome], str] = {}
    wait_until: dict[str, float] = {}
    for key in parts:
        wait_until[key] = submitted + budgets.get(key, budget_for(key)) + grace

    result = FanOutResult()
    outcomes: dict[str, _Outcome] = {}
    on_this_thread = set(multiplexed) | {key for key, _alias, _opened in local}
    for key, part in parts.items():
        if not _take_slot(key):
            on_this_thread.discard(key)
            multiplexed.pop(key, None)
            local = [entry for entry in local if entry[0] != key]
            outcomes[key] = _Outcome(error=SourceBusy(f"{settings.FANOUT_MAX_PER_SOURCE} parts of {key} in flight"))
            _fail(key, outcomes[key].error, essential)  # type: ignore[arg-type]
            continue
        if key in on_this_thread:
            continue  # run below, on this thread, holding its slot
        # Each part runs in its own copy of the caller's context (one context cannot be entered
        # by two threads at once).
        future = pool.submit(
            context.copy().run, _run_part, key, part, submitted + budgets.get(key, budget_for(key)), key in essential
        )
        future.add_done_callback(lambda _f, key=key: _release_slot(key))  # also when cancelled
        futures[future] = key

    def run_local() -> None:
        for key, alias, opened in local:
            deadline = submitted + budgets.get(key, budget_for(key))
            try:
                outcomes[key] = _run_part(key, parts[key], deadline, key in essential, alias, inline=True)
            except _EssentialFailed as failed:
                outcomes[key] = failed.outcome  # raised below, once nothing is in flight
            finally:
                if opened:
                    _return_connection(connections[alias])

    try:
        if multiplexed:
            outcomes.update(_run_multiplexed(multiplexed, submitted, budgets, grace, meanwhile=run_local))
        else:
            run_local()
    finally:
        for key in on_this_thread:
            _release_slot(key)
    for key in on_this_thread:
        if outcomes[key].error is not None:
            _fail(key, outcomes[key].error, essential)  # type: ignore[arg-type]
    pending = set(futures)
    while pending:
        next_deadline = min(wait_until[futures[f]] for f in pending)
        # One wake-up when everything is in (the usual case), when a part raises (an essential
        # source failed, NotFound), or at the next deadline.
        done, _ = wait(pending, timeout=max(0.0, next_deadline - time.monotonic()), return_when=FIRST_EXCEPTION)
        for future in done:
            pending.discard(future)
            key = futures[future]
            try:
                outcomes[key] = outcome = future.result()  # a non-database exception propagates
            except _EssentialFailed as failed:
                _fail(key, failed.outcome.error, essential)  # type: ignore[arg-type]
                raise  # not reached: _fail raises for an essential key
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
    if isinstance(error, (TimeoutError, BudgetExhausted, SourceBusy)):
        return True
    text = str(error).lower()
    if any(
        sign in text
        for sign in (
            "refused",
            "could not connect",
            "couldn't get a connection",
            "is unavailable",
            "connection failed",
            "can't connect",
        )
    ):
        return False  # the database is down, not slow
    return "timeout" in text or "interrupted" in text or "max_statement_time" in text


def close_worker_connections(timeout: float = 10.0) -> None:
    """Close every database connection the pool's threads hold (after a settings change, in tests).

    One task per worker thread: a barrier makes sure each runs on a thread of its own.
    """
    pool = executor()
    workers = max_workers()
    barrier = threading.Barrier(workers, timeout=timeout)

    def close() -> None:
        connections.close_all()
        _return_connections()
        barrier.wait()

    for future in [pool.submit(close) for _ in range(workers)]:
        future.result(timeout=timeout + 1)
