"""The fan-out: concurrency, budgets enforced by the database, degradation, connection hygiene."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections

from core import aliases
from core.db_backends import breaker
from core.errors import NotFound, SourceUnavailable
from core.services import fanout
from core.services.fanout import fan_out
from routers import state
from tests.services.faults import Stopwatch, alias_down, wait_for_fanout_idle

DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS]


def slow_sql(alias: str, seconds: float) -> str:
    """A statement that keeps the database busy for about ``seconds`` (or forever on SQLite)."""
    vendor = connections[alias].vendor
    if vendor == "postgresql":
        return f"SELECT pg_sleep({seconds})"
    if vendor == "mysql":
        return f"SELECT SLEEP({seconds})"
    # SQLite has no sleep: an endless recursive count, only a progress handler stops it.
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"


def run_sql(sql: str):  # type: ignore[no-untyped-def]
    def part(alias: str) -> list:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()

    return part


@pytest.fixture(autouse=True)
def _idle_pool():  # type: ignore[no-untyped-def]
    yield
    wait_for_fanout_idle()


def test_one_pool_per_process_sized_by_the_setting(settings) -> None:  # type: ignore[no-untyped-def]
    assert fanout.executor() is fanout.executor()
    assert fanout.max_workers() == settings.FANOUT_MAX_WORKERS


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_parts_run_concurrently_and_share_the_request_timings() -> None:
    with state.isolated() as current, Stopwatch() as watch:
        got = fan_out({alias: run_sql("SELECT 1") for alias in DBS})
        # Each part sleeps 0.4 s: together they take about one of them, not the sum.
        slept = fan_out({alias: (lambda a: time.sleep(0.4) or a) for alias in DBS})
    assert got.results == {alias: [(1,)] for alias in DBS}
    assert got.degraded == [] and set(got.sources) == set(DBS)
    assert slept.results == {alias: alias for alias in DBS}
    assert watch.seconds < 0.4 * len(DBS) - 0.3
    assert {alias: int(current.timings[alias][0]) for alias in DBS} == {alias: 1 for alias in DBS}


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_worker_threads_return_their_connections() -> None:
    """PostgreSQL connections go back to the pool after each part; an SQLite file handle stays
    with its worker thread while healthy and is closed after an error."""
    seen = {}
    caller = threading.current_thread()

    def part(alias: str) -> int:
        seen[alias] = connections[alias], threading.current_thread()
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        assert connections[alias].connection is not None
        return 1

    fan_out({alias: part for alias in DBS})
    # At most one part runs on the caller (see the tests of that below).
    on_caller = [alias for alias, (_, thread) in seen.items() if thread is caller]
    assert len(on_caller) <= 1
    seen = {alias: wrapper for alias, (wrapper, _) in seen.items() if alias not in on_caller}
    for alias, wrapper in seen.items():
        assert wrapper is not connections[alias]  # the worker's own, not the caller's
        if wrapper.vendor == "sqlite":
            assert wrapper.connection is not None
        else:
            assert wrapper.connection is None

    def failing(alias: str) -> None:
        seen[alias] = connections[alias]
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    got = fan_out({alias: failing for alias in DBS})
    assert got.degraded == DBS
    assert all(wrapper.connection is None for wrapper in seen.values() if wrapper is not connections[wrapper.alias])


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_slow_statement_is_stopped_by_the_database_within_its_budget() -> None:
    with Stopwatch() as watch:
        got = fan_out(
            {
                aliases.ANALYTICS: run_sql(slow_sql(aliases.ANALYTICS, 5)),
                aliases.DEFAULT: run_sql("SELECT 1"),
            },
            budgets={aliases.ANALYTICS: 0.5},
        )
    assert watch.seconds < 0.5 + 0.5
    assert got.degraded == [aliases.ANALYTICS]
    assert got.results == {aliases.ANALYTICS: None, aliases.DEFAULT: [(1,)]}
    # The database cancelled the statement (not only the caller giving up on it).
    assert isinstance(got.errors[aliases.ANALYTICS], OperationalError)
    assert 400 <= got.sources[aliases.ANALYTICS] < 1000
    # The connection is usable again, without the budget: a statement longer than it succeeds.
    longer = slow_sql(aliases.ANALYTICS, 0.6) if connections[aliases.ANALYTICS].vendor != "sqlite" else "SELECT 2"
    again = fan_out({aliases.ANALYTICS: run_sql(longer)}, budgets={aliases.ANALYTICS: 3})
    assert again.degraded == []


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=[aliases.LEGACY])
def test_mariadb_statements_get_max_statement_time() -> None:
    with Stopwatch() as watch:
        got = fan_out({aliases.LEGACY: run_sql(slow_sql(aliases.LEGACY, 5))}, budgets={aliases.LEGACY: 0.4})
    assert watch.seconds < 0.9
    assert got.degraded == [aliases.LEGACY]
    assert isinstance(got.errors[aliases.LEGACY], OperationalError)


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_database_that_is_down_degrades_within_budget_plus_grace(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_GRACE_SECONDS = 0.2
    with alias_down(aliases.ANALYTICS), Stopwatch() as watch:
        got = fan_out(
            {aliases.ANALYTICS: run_sql("SELECT 1"), aliases.USERS: run_sql("SELECT 1")},
            budgets={aliases.ANALYTICS: 0.5},
        )
    assert watch.seconds < 0.5 + 0.5
    assert got.degraded == [aliases.ANALYTICS]
    assert got.results[aliases.USERS] == [(1,)]


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_an_essential_source_that_is_down_raises_source_unavailable() -> None:
    with alias_down(aliases.USERS), Stopwatch() as watch, pytest.raises(SourceUnavailable) as raised:
        fan_out(
            {aliases.USERS: run_sql("SELECT 1"), aliases.DEFAULT: run_sql("SELECT 1")},
            budgets={aliases.USERS: 0.5},
            essential={aliases.USERS},
        )
    assert raised.value.alias == aliases.USERS
    assert watch.seconds < 1.0


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_domain_errors_of_a_part_reach_the_caller() -> None:
    def missing(alias: str) -> None:
        raise NotFound("user", 1)

    with pytest.raises(NotFound):
        fan_out({aliases.USERS: missing, aliases.DEFAULT: run_sql("SELECT 1")})


def select_one_noting_thread(threads: dict):  # type: ignore[no-untyped-def]
    """A part that runs ``SELECT 1`` and notes, by alias, the thread it ran on."""

    def part(alias: str) -> int:
        threads[alias] = threading.current_thread()
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        return 1

    return part


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_part_whose_connection_the_caller_holds_runs_on_the_caller() -> None:
    """The request's token lookup leaves a connection on default: that part runs there (no
    hand-off, no pool check-out), the others in the pool; the caller keeps its connection."""
    with connections[aliases.DEFAULT].cursor() as cursor:
        cursor.execute("SELECT 1")
    caller = connections[aliases.DEFAULT]
    threads: dict[str, threading.Thread] = {}
    part = select_one_noting_thread(threads)

    got = fan_out({alias: part for alias in DBS})
    assert got.degraded == []
    assert threads[aliases.DEFAULT] is threading.current_thread()
    assert all(threads[a] is not threading.current_thread() for a in DBS if a != aliases.DEFAULT)
    assert caller.connection is not None  # not given back: the request still uses it


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_with_no_connection_held_a_part_on_an_idle_pooled_connection_runs_on_the_caller() -> None:
    """No connection held (a remembered token made no query): one part on a pooled PostgreSQL
    database with an idle connection runs on the caller, and that connection goes back after it."""
    for alias in DBS:
        connections[alias].close()
    fan_out({alias: run_sql("SELECT 1") for alias in DBS})  # the pools now hold idle connections
    threads: dict[str, threading.Thread] = {}
    part = select_one_noting_thread(threads)

    got = fan_out({alias: part for alias in DBS})
    assert got.degraded == []
    on_caller = [alias for alias, thread in threads.items() if thread is threading.current_thread()]
    assert len(on_caller) == 1 and connections[on_caller[0]].vendor == "postgresql"
    assert connections[on_caller[0]].connection is None  # back in the pool


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_no_part_runs_on_the_caller_for_a_database_known_down() -> None:
    for alias in DBS:
        connections[alias].close()
    fan_out({alias: run_sql("SELECT 1") for alias in DBS})
    pg = [alias for alias in DBS if connections[alias].vendor == "postgresql"]
    for alias in pg:
        breaker.breaker_for(alias, connections[alias].settings_dict).failure(OSError("down for the test"))
    threads = {}

    def part(alias: str) -> None:
        threads[alias] = threading.current_thread()

    fan_out({alias: part for alias in pg})
    assert all(thread is not threading.current_thread() for thread in threads.values())


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_the_budget_applies_to_a_part_run_on_the_caller() -> None:
    with connections[aliases.ANALYTICS].cursor() as cursor:
        cursor.execute("SELECT 1")
    with Stopwatch() as watch:
        got = fan_out(
            {aliases.ANALYTICS: run_sql(slow_sql(aliases.ANALYTICS, 5)), aliases.USERS: run_sql("SELECT 1")},
            budgets={aliases.ANALYTICS: 0.5},
        )
    assert watch.seconds < 1.0
    assert got.degraded == [aliases.ANALYTICS]
    assert isinstance(got.errors[aliases.ANALYTICS], OperationalError)
    # The caller's connection is clean afterwards: no timeout left on it.
    longer = slow_sql(aliases.ANALYTICS, 0.7) if connections[aliases.ANALYTICS].vendor != "sqlite" else "SELECT 1"
    with connections[aliases.ANALYTICS].cursor() as cursor:
        cursor.execute(longer)


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_an_unknown_user_answers_without_waiting_for_a_slow_source() -> None:
    def missing(alias: str) -> None:
        raise NotFound("user", 1)

    with Stopwatch() as watch, pytest.raises(NotFound):
        fan_out(
            {aliases.USERS: missing, aliases.ANALYTICS: run_sql(slow_sql(aliases.ANALYTICS, 5))},
            budgets={aliases.ANALYTICS: 3},
        )
    assert watch.seconds < 1.0


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_slow_source_cannot_take_the_whole_pool(settings) -> None:  # type: ignore[no-untyped-def]
    """Past FANOUT_MAX_PER_SOURCE parts of one source in flight, its next part is degraded at once
    (not queued behind the slow ones), and the other sources still answer."""
    settings.FANOUT_MAX_PER_SOURCE = 1
    started = threading.Event()
    slow = slow_sql(aliases.ANALYTICS, 5)

    def slow_part(alias: str) -> list:
        started.set()
        return run_sql(slow)(alias)

    first = fanout.executor().submit(
        state.with_context(fan_out), {aliases.ANALYTICS: slow_part}, {aliases.ANALYTICS: 1.5}
    )
    assert started.wait(5)
    with Stopwatch() as watch:
        got = fan_out({aliases.ANALYTICS: run_sql("SELECT 1"), aliases.USERS: run_sql("SELECT 1")})
    assert watch.seconds < 0.5
    assert got.degraded == [aliases.ANALYTICS] and got.results[aliases.USERS] == [(1,)]
    assert isinstance(got.errors[aliases.ANALYTICS], fanout.SourceBusy)
    assert first.result(timeout=5).degraded == [aliases.ANALYTICS]  # stopped by its budget
    # Its slot is free again (released by the part's done-callback).
    wait_for_fanout_idle()
    assert fan_out({aliases.ANALYTICS: run_sql("SELECT 1")}).degraded == []


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_select_rows_keeps_the_budget_the_errors_and_the_timings() -> None:
    """The lean statement path of the hot parts: the database still stops a slow statement at
    the part's budget, errors are Django's, and each statement is timed for Server-Timing."""
    from core.services.fanout import select_rows

    def lean(sql: str):  # type: ignore[no-untyped-def]
        return lambda alias: select_rows(alias, sql, [])

    with state.isolated() as current, Stopwatch() as watch:
        got = fan_out(
            {aliases.ANALYTICS: lean(slow_sql(aliases.ANALYTICS, 5)), aliases.USERS: lean("SELECT 1")},
            budgets={aliases.ANALYTICS: 0.5},
        )
    assert watch.seconds < 1.0
    assert got.degraded == [aliases.ANALYTICS]
    assert isinstance(got.errors[aliases.ANALYTICS], OperationalError)  # Django's, not the driver's
    assert got.results[aliases.USERS] == [(1,)]
    assert current.timings[aliases.USERS][0] == 1 and current.timings[aliases.ANALYTICS][0] == 1
    # Outside a part: no budget, the plain answer; the connection is fine afterwards.
    assert select_rows(aliases.ANALYTICS, "SELECT 2", []) == [(2,)]


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_select_rows_goes_through_execute_wrappers_of_others() -> None:
    """A wrapper someone else installed (tracing, a fault injected on purpose) still sees the
    statement: the lean path is taken only when the wrappers are the project's own."""
    from core.services.fanout import select_rows

    seen = []

    def tracer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return execute(sql, params, many, context)

    got = fan_out({aliases.USERS: lambda alias: select_rows(alias, "SELECT 1", [])})
    assert got.results[aliases.USERS] == [(1,)] and seen == []
    with connections[aliases.ANALYTICS].execute_wrapper(tracer):
        assert select_rows(aliases.ANALYTICS, "SELECT 3", []) == [(3,)]
    assert seen == ["SELECT 3"]
