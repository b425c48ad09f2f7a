"""Several PostgreSQL statements in flight at once from one thread (libpq's asynchronous calls).

The fan-out's parts that are one SELECT each on PostgreSQL (:class:`core.services.fanout.Select`)
need no thread of their own: the calling thread sends each statement on its own database's
connection without waiting (``PQsendQuery``), then reads the answers as they arrive, polling the
sockets. The databases work at the same time, exactly as with one worker thread per part, but
without a thread hand-off per part and without the threads contending for the GIL, which on a
two-core machine cost more than the statements themselves.

Each statement is sent as :func:`core.services.fanout.select_rows` sends it: parameters bound on
the client by psycopg (the ``ClientCursor`` Django uses), ``SET LOCAL statement_timeout`` in the
same message so that the *database* stops it at the end of its budget, values loaded by the
connection's own loaders, errors translated to Django's ``DatabaseError`` family (the connection
marked as having seen one), one timing record per statement. The caller stops waiting at
``wait_until`` (budget + grace: a server that does not answer at all); a connection still busy
then is closed, never handed back to the pool.
"""

from __future__ import annotations

import select
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from django.db import DatabaseError, connections
from psycopg import pq
from psycopg.adapt import Transformer
from psycopg.errors import error_from_result

from core import instrumentation
from core.services.sql import within_budget
from routers import health

_DONE_STATUSES = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.EMPTY_QUERY)

#: Longest a statement waits for a pooled connection (at most its budget): enough for one in use
#: by another thread to come back, short of holding up the statements sent after it.
CHECKOUT_WAIT_SECONDS = 0.25


@dataclass
class Statement:
    """One SELECT to run on ``alias`` (its connection checked out by :func:`run` if need be)."""

    key: str
    alias: str
    sql: str
    params: Any
    #: monotonic time at which the database should stop the statement (its budget)
    deadline: float
    #: monotonic time at which the caller stops waiting (budget + grace)
    wait_until: float
    #: True: on the caller's own Django connection to ``alias`` (kept); False: on one checked out
    #: of the pool for the statement and handed back afterwards
    held: bool = False
    rows: list[tuple[Any, ...]] | None = None
    error: BaseException | None = None
    #: seconds from sending (or checking out) to the last result, or until given up
    seconds: float = 0.0
    _started: float = 0.0
    _raw: Any = field(default=None, repr=False)
    _failure: pq.PGresult | None = field(default=None, repr=False)


def run(statements: list[Statement], meanwhile: Callable[[], None] | None = None) -> None:
    """Send every statement, call ``meanwhile`` (other work of the calling thread), then wait for
    all of them; fills ``rows`` or ``error`` of each.

    Never raises for a database's failure: a statement that could not be sent (no connection),
    failed, or got no answer by its ``wait_until`` has its ``error`` set. An exception of
    ``meanwhile`` is raised once every statement is complete (no connection is left mid-statement).
    """
    waiting: dict[int, Statement] = {}
    poller = select.poll()
    try:
        for statement in statements:
            statement._started = time.perf_counter()
            if _send(statement):
                fd = statement._raw.pgconn.socket
                waiting[fd] = statement
                poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        if meanwhile is not None:
            meanwhile()
    finally:  # whatever was raised above, nothing is left mid-statement or checked out
        try:
            _wait(waiting, poller)
        finally:
            for statement in statements:
                _check_in(statement)


def _wait(waiting: dict[int, Statement], poller: select.poll) -> None:
    while waiting:
        timeout = min(s.wait_until for s in waiting.values()) - time.monotonic()
        # Past a deadline, one more look without waiting: an answer that arrived while this thread
        # was busy (sending the others, running ``meanwhile``) is read, not given up on.
        for fd, _events in poller.poll(max(1, int(timeout * 1000) + 1) if timeout > 0 else 0):
            if _receive(waiting[fd]):
                poller.unregister(fd)
                del waiting[fd]
        now = time.monotonic()
        for fd, statement in list(waiting.items()):
            if statement.wait_until <= now:
                poller.unregister(fd)
                del waiting[fd]
                _give_up(statement)


def _send(statement: Statement) -> bool:
    connection = connections[statement.alias]
    try:
        with connection.wrap_database_errors:
            if statement.held:
                raw = connection.connection
            else:
                # The pool had an idle connection a moment ago (the condition for this path); if it
                # turns out dead (a server going down) the pool would wait for a new one, with
                # the other statements waiting behind this thread: a short wait, then the part
                # fails (and the breaker learns of a server that refuses connections).
                wait = min(CHECKOUT_WAIT_SECONDS, statement.deadline - time.monotonic())
                raw = connection.checkout(timeout=max(0.0, wait))
            statement._raw = raw
            text = within_budget(_binder(raw).mogrify(statement.sql, statement.params), statement.deadline)
            pgconn = raw.pgconn
            pgconn.send_query(text.encode(raw.info.encoding))
            # psycopg keeps libpq non-blocking: what did not fit in the socket's buffer is sent
            # here (a dashboard's statement always fits; a long one waits until the deadline).
            while pgconn.flush():
                if not select.select([], [pgconn.socket], [], max(0.0, statement.wait_until - time.monotonic()))[1]:
                    raise psycopg.OperationalError(f"could not send the statement to {statement.alias} in time")
    except DatabaseError as exc:
        health.query_failed(statement.alias, exc)
        _finish(statement, error=exc)
        return False
    return True


def _binder(raw: Any) -> Any:
    """The connection's cursor that binds parameters on the client (Django's ``ClientCursor``),
    made once per connection: it only formats statements here, it never executes one."""
    binder = _BINDERS.get(raw)
    if binder is None:
        binder = _BINDERS[raw] = raw.cursor()
    return binder


#: Each pooled connection's binding cursor, kept here (not as an attribute on psycopg's object).
_BINDERS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _receive(statement: Statement) -> bool:
    """Read what arrived; True once the statement is complete (rows or error)."""
    raw = statement._raw
    pgconn = raw.pgconn
    try:
        pgconn.consume_input()
        while True:
            if pgconn.is_busy():
                return False
            result = pgconn.get_result()
            if result is None:
                break
            status = result.status
            if status == pq.ExecStatus.TUPLES_OK:
                loader = Transformer(raw)
                loader.set_pgresult(result)
                statement.rows = loader.load_rows(0, result.ntuples, tuple)
            elif status not in _DONE_STATUSES and statement._failure is None:
                statement._failure = result  # the server stops at the first error
        if statement._failure is not None:
            raise error_from_result(statement._failure, encoding=raw.info.encoding)
    except psycopg.Error as exc:
        error = _translated(statement.alias, exc)
        health.query_failed(statement.alias, error)  # a replica lost mid-read (see routers.health)
        _finish(statement, error=error)
        return True
    _finish(statement)
    return True


def _give_up(statement: Statement) -> None:
    """No answer by ``wait_until``: the connection is mid-statement, so it is closed, never used
    again (a pooled one is handed back busy by :func:`_check_in`: the pool closes it and opens
    another)."""
    if statement.held:
        try:
            connections[statement.alias].close()
        except DatabaseError:
            pass
    _finish(statement, error=TimeoutError(f"no answer from {statement.alias} in time"))


def _check_in(statement: Statement) -> None:
    if not statement.held and statement._raw is not None:
        connections[statement.alias].checkin(statement._raw)
    statement._raw = None


def _translated(alias: str, exc: psycopg.Error) -> DatabaseError:
    connection = connections[alias]
    try:
        with connection.wrap_database_errors:  # Django's class for it; errors_occurred set
            raise exc
    except DatabaseError as translated:
        return translated
    raise AssertionError("unreachable")  # pragma: no cover


def _finish(statement: Statement, error: BaseException | None = None) -> None:
    statement.error = error
    statement.seconds = time.perf_counter() - statement._started
    if statement._raw is not None:  # a failed check-out was recorded by the backend
        instrumentation.record(statement.alias, statement.seconds, error is not None)
