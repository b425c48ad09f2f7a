"""Select parts sent together by the calling thread (libpq's asynchronous calls), on real PostgreSQL.

Each test checks which path a part took by the thread its ``build`` ran on: the calling thread
when its statement was multiplexed, a fan-out worker when it went through the pool.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import DatabaseError, OperationalError, ProgrammingError, connections

from core import aliases
from core.db_backends.postgresql import base as postgresql_backend
from core.errors import NotFound, SourceUnavailable
from core.services import fanout
from core.services.fanout import Select, fan_out
from routers import state
from tests.services.faults import Stopwatch, _psycopg_connect, wait_for_fanout_idle

PG = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS]
DBS = [*PG, aliases.CACHE]

pytestmark = [pytest.mark.real_engines, pytest.mark.django_db(transaction=True, databases=DBS)]


@pytest.fixture(autouse=True)
def _warm_pools() -> Iterator[None]:
    """Pools exist with an idle connection each (as in a running service), and nothing is held."""
    for alias in PG:
        connections[alias].ensure_connection()
        connections[alias].close()
    yield
    wait_for_fanout_idle()


def noting(threads: dict[str, int], key: str, sql: str, params: list | None = None) -> Select:
    def build(rows: list) -> list:
        threads[key] = threading.get_ident()
        return rows

    return Select(sql, params or [], build)


def checked_out(alias: str) -> int:
    stats = postgresql_backend.pools()[alias].get_stats()
    return stats["pool_size"] - stats.get("pool_available", 0)


def test_select_parts_run_at_once_on_the_calling_thread_one_statement_each() -> None:
    threads: dict[str, int] = {}
    parts = {alias: noting(threads, alias, "SELECT pg_sleep(0.3), %s::int", [n]) for n, alias in enumerate(PG)}
    with state.isolated() as current, Stopwatch() as watch:
        got = fan_out(parts)
    assert got.degraded == []
    assert [got.results[alias][0][1] for alias in PG] == [0, 1, 2]  # client-side binding, own loaders
    assert watch.seconds < 0.3 * 2  # at the same time: about one sleep, not three
    assert set(threads.values()) == {threading.get_ident()}
    assert {alias: current.timings[alias][0] for alias in PG} == dict.fromkeys(PG, 1)
    assert all(got.sources[alias] >= 290 for alias in PG)
    # Every connection went back to its pool; the caller holds none.
    assert all(connections[alias].connection is None for alias in PG)
    assert all(checked_out(alias) == 0 for alias in PG)


def test_a_part_on_a_connection_the_caller_holds_stays_on_it() -> None:
    threads: dict[str, int] = {}
    connections[aliases.USERS].ensure_connection()
    raw = connections[aliases.USERS].connection
    got = fan_out({aliases.USERS: noting(threads, "u", "SELECT 1"), aliases.DEFAULT: noting(threads, "d", "SELECT 2")})
    assert got.results == {aliases.USERS: [(1,)], aliases.DEFAULT: [(2,)]}
    assert threads["u"] == threads["d"] == threading.get_ident()
    assert connections[aliases.USERS].connection is raw  # still the caller's, not handed back
    assert connections[aliases.DEFAULT].connection is None


def test_the_database_stops_a_slow_statement_at_its_budget_and_the_connection_stays_usable() -> None:
    threads: dict[str, int] = {}
    with Stopwatch() as watch:
        got = fan_out(
            {
                aliases.ANALYTICS: noting(threads, "a", "SELECT pg_sleep(5)"),
                aliases.USERS: noting(threads, "u", "SELECT 1"),
            },
            budgets={aliases.ANALYTICS: 0.4},
        )
    assert watch.seconds < 0.4 + 0.5
    assert got.degraded == [aliases.ANALYTICS] and got.results[aliases.ANALYTICS] is None
    assert isinstance(got.errors[aliases.ANALYTICS], OperationalError)  # Django's class
    assert "statement timeout" in str(got.errors[aliases.ANALYTICS])
    assert got.results[aliases.USERS] == [(1,)] and threads["u"] == threading.get_ident()
    assert checked_out(aliases.ANALYTICS) == 0
    # The pooled connection carries no timeout afterwards (SET LOCAL ended with the statement).
    with connections[aliases.ANALYTICS].cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


def test_an_sql_error_degrades_its_part_with_djangos_error() -> None:
    got = fan_out(
        {
            aliases.DEFAULT: Select("SELECT * FROM no_such_table", [], list),
            aliases.USERS: Select("SELECT 1/0", [], list),
            aliases.ANALYTICS: Select("SELECT %s::text", ["it's; -- fine"], list),
        }
    )
    assert got.degraded == [aliases.DEFAULT, aliases.USERS]
    assert isinstance(got.errors[aliases.DEFAULT], ProgrammingError)
    assert isinstance(got.errors[aliases.USERS], DatabaseError)
    assert got.results[aliases.ANALYTICS] == [("it's; -- fine",)]  # parameters bound safely
    assert all(checked_out(alias) == 0 for alias in PG)
    assert fan_out({aliases.DEFAULT: Select("SELECT 5", [], list)}).results[aliases.DEFAULT] == [(5,)]


def test_an_essential_part_failing_is_source_unavailable_once_the_others_are_done() -> None:
    with pytest.raises(SourceUnavailable) as raised:
        fan_out(
            {
                aliases.USERS: Select("SELECT 1/0", [], list),
                aliases.ANALYTICS: Select("SELECT pg_sleep(0.2)", [], list),
            },
            essential={aliases.USERS},
        )
    assert raised.value.alias == aliases.USERS
    assert all(checked_out(alias) == 0 for alias in PG)  # nothing left mid-statement


def test_a_domain_error_of_build_reaches_the_caller_with_every_connection_back() -> None:
    def missing(rows: list) -> None:
        raise NotFound("user", 1)

    with pytest.raises(NotFound):
        fan_out(
            {
                aliases.USERS: Select("SELECT 1 WHERE false", [], missing),
                aliases.ANALYTICS: Select("SELECT pg_sleep(0.2)", [], list),
            }
        )
    assert all(checked_out(alias) == 0 for alias in PG)


def test_a_backend_terminated_mid_statement_degrades_and_the_pool_replaces_it() -> None:
    killer = _psycopg_connect(aliases.ANALYTICS)
    killer.autocommit = True
    marker = "switchyard-multiplex-terminate"

    def terminate_soon() -> None:
        for _ in range(100):
            gone = killer.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                [f"%{marker}%"],
            ).fetchone()[0]
            if gone:
                return
            threading.Event().wait(0.02)

    thread = threading.Thread(target=terminate_soon)
    thread.start()
    try:
        got = fan_out(
            {
                aliases.ANALYTICS: Select(f"SELECT pg_sleep(3), '{marker}'", [], list),
                aliases.USERS: Select("SELECT 1", [], list),
            }
        )
    finally:
        thread.join()
        killer.close()
    assert got.degraded == [aliases.ANALYTICS]
    assert isinstance(got.errors[aliases.ANALYTICS], OperationalError)
    assert got.results[aliases.USERS] == [(1,)]
    # The next fan-out gets a working connection (the broken one was not handed out again).
    assert fan_out({aliases.ANALYTICS: Select("SELECT 7", [], list)}).results[aliases.ANALYTICS] == [(7,)]


@contextlib.contextmanager
def backend_stopped(pid: int) -> Iterator[None]:
    """The server process of one session frozen (SIGSTOP): it neither answers nor times out."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists() or b"postgres" not in cmdline.read_bytes():
        pytest.skip("the PostgreSQL server does not run on this machine")
    try:
        os.kill(pid, signal.SIGSTOP)
    except PermissionError:
        pytest.skip("not allowed to signal the PostgreSQL server's processes")
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_server_that_does_not_answer_is_given_up_at_budget_plus_grace(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_GRACE_SECONDS = 0.2
    connection = connections[aliases.ANALYTICS]
    connection.ensure_connection()  # the caller's own: its server process is known
    pid = connection.connection.info.backend_pid
    with backend_stopped(pid), Stopwatch() as watch:
        got = fan_out(
            {aliases.ANALYTICS: Select("SELECT 1", [], list), aliases.USERS: Select("SELECT 2", [], list)},
            budgets={aliases.ANALYTICS: 0.3},
        )
    assert 0.3 <= watch.seconds < 0.3 + 0.2 + 0.5
    assert got.degraded == [aliases.ANALYTICS]
    assert isinstance(got.errors[aliases.ANALYTICS], TimeoutError)
    assert got.results[aliases.USERS] == [(2,)]
    # The connection was mid-statement: closed, not kept nor handed back to the pool.
    assert connection.connection is None
    assert fan_out({aliases.ANALYTICS: Select("SELECT 3", [], list)}).results[aliases.ANALYTICS] == [(3,)]


def test_an_sqlite_part_runs_on_the_calling_thread_while_the_statements_are_in_flight() -> None:
    if connections[aliases.CACHE].vendor != "sqlite":
        pytest.skip("cache_db is not SQLite in this configuration")
    threads: dict[str, int] = {}

    def local(alias: str) -> list:
        threads["cache"] = threading.get_ident()
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 4")
            return cursor.fetchall()

    with Stopwatch() as watch:
        got = fan_out({aliases.ANALYTICS: noting(threads, "a", "SELECT pg_sleep(0.3)"), aliases.CACHE: local})
    assert got.results[aliases.CACHE] == [(4,)] and got.degraded == []
    assert threads["cache"] == threads["a"] == threading.get_ident()
    assert watch.seconds < 0.3 * 2


def test_a_part_whose_queries_are_being_logged_goes_through_djangos_cursor() -> None:
    """While Django logs an alias's queries (DEBUG, CaptureQueriesContext) its Select is not
    multiplexed: it runs as any part, through Django's cursor, so that the log is complete."""
    from django.test.utils import CaptureQueriesContext

    threads: dict[str, int] = {}
    with CaptureQueriesContext(connections[aliases.USERS]) as logged:
        got = fan_out(
            {aliases.USERS: noting(threads, "u", "SELECT 1"), aliases.DEFAULT: noting(threads, "d", "SELECT 2")}
        )
    assert got.results == {aliases.USERS: [(1,)], aliases.DEFAULT: [(2,)]}
    assert [q["sql"].rpartition("; ")[2] for q in logged.captured_queries] == ["SELECT 1"]  # after the budget
    assert fanout._multiplexable(aliases.DEFAULT) is not None


def test_a_database_known_down_is_not_multiplexed() -> None:
    from core.db_backends import breaker

    threads: dict[str, int] = {}
    brk = breaker.breaker_for(aliases.ANALYTICS, connections[aliases.ANALYTICS].settings_dict)
    for _ in range(10):
        brk.failure(psycopg.OperationalError("down"))
    assert breaker.is_open(aliases.ANALYTICS)
    got = fan_out(
        {aliases.ANALYTICS: noting(threads, "a", "SELECT 1"), aliases.USERS: noting(threads, "u", "SELECT 1")}
    )
    assert threads["u"] == threading.get_ident()
    assert aliases.ANALYTICS in got.degraded or threads["a"] != threading.get_ident()
    assert fanout._multiplexable(aliases.ANALYTICS) is None


def test_a_statement_larger_than_the_socket_buffer_is_sent_whole() -> None:
    """libpq is non-blocking under psycopg: what does not fit in the socket's buffer at once is
    flushed by the sender, not dropped."""
    big = "x" * 8_000_000
    got = fan_out(
        {aliases.USERS: Select("SELECT length(%s)", [big], list), aliases.DEFAULT: Select("SELECT 1", [], list)}
    )
    assert got.results == {aliases.USERS: [(8_000_000,)], aliases.DEFAULT: [(1,)]}


def test_a_pooled_check_out_waits_at_most_its_timeout_and_a_busy_pool_is_not_a_down_server() -> None:
    """The multiplexed path checks a connection out for the statement alone, waiting no longer
    than what is left of the part's budget (never the pool's own, longer timeout)."""
    from psycopg_pool import PoolTimeout

    from core.db_backends import breaker

    wrapper = connections[aliases.ANALYTICS]
    pool = postgresql_backend.pools()[aliases.ANALYTICS]
    taken = [pool.getconn() for _ in range(pool.max_size)]
    try:
        with Stopwatch() as watch, pytest.raises(PoolTimeout):
            wrapper.checkout(timeout=0.3)
        assert 0.3 <= watch.seconds < 0.3 + 0.5
        # A busy pool says nothing about the server: the breaker stays closed.
        assert not breaker.is_open(aliases.ANALYTICS)
    finally:
        for conn in taken:
            pool.putconn(conn)
    raw = wrapper.checkout(timeout=1.0)
    try:
        assert raw.execute("SELECT 1").fetchone() == (1,)
    finally:
        wrapper.checkin(raw)
    assert checked_out(aliases.ANALYTICS) == 0


def test_a_parameter_the_driver_cannot_send_degrades_its_part_and_nothing_is_left_checked_out() -> None:
    got = fan_out(
        {
            aliases.USERS: Select("SELECT %s", [object()], list),
            aliases.ANALYTICS: Select("SELECT pg_sleep(0.1), 1", [], list),
        }
    )
    assert got.degraded == [aliases.USERS]
    assert isinstance(got.errors[aliases.USERS], DatabaseError)
    assert got.results[aliases.ANALYTICS][0][1] == 1
    assert all(checked_out(alias) == 0 for alias in PG)


def test_an_answer_that_arrived_while_the_caller_was_busy_past_the_deadline_is_read() -> None:
    """The caller looks once more before giving up: a statement answered in time is not lost
    because the calling thread was busy (sending the others, running local parts)."""
    import time

    from core.services import multiplex

    now = time.monotonic()
    statement = multiplex.Statement("users_db", aliases.USERS, "SELECT 42", [], now + 5, now + 0.1)
    multiplex.run([statement], meanwhile=lambda: time.sleep(0.4))
    assert statement.error is None and statement.rows == [(42,)]
    assert checked_out(aliases.USERS) == 0


def test_a_pooled_connection_found_dead_with_the_server_refusing_new_ones_fails_fast(settings) -> None:  # type: ignore[no-untyped-def]
    """A server going down: the pool's idle connection is gone and no new one can be made. The
    statement waits for a connection only briefly (not its whole budget) and the other parts,
    sent before or after it, are answered as usual."""
    from core.services import multiplex
    from tests.core.test_pool_checks import _terminate_pooled_backends
    from tests.services.faults import unused_port

    wrapper = connections[aliases.ANALYTICS]
    pool = postgresql_backend.pools()[aliases.ANALYTICS]
    saved = dict(pool.kwargs)
    pool.kwargs["port"] = unused_port()  # new connections are refused from now on
    try:
        assert _terminate_pooled_backends(wrapper) >= 1
        assert fanout._multiplexable(aliases.ANALYTICS) is not None  # the idle one looks usable
        with Stopwatch() as watch:
            got = fan_out(
                {
                    aliases.USERS: Select("SELECT 1", [], list),
                    aliases.ANALYTICS: Select("SELECT 2", [], list),
                    aliases.DEFAULT: Select("SELECT 3", [], list),
                },
                budgets={aliases.ANALYTICS: 3.0},
                essential={aliases.USERS},
            )
        assert watch.seconds < multiplex.CHECKOUT_WAIT_SECONDS + 0.5
        assert got.degraded == [aliases.ANALYTICS]
        assert got.results[aliases.USERS] == [(1,)] and got.results[aliases.DEFAULT] == [(3,)]
    finally:
        pool.kwargs.clear()
        pool.kwargs.update(saved)
        wrapper.close_pool()
