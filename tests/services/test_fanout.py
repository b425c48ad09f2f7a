"""The fan-out: concurrency, budgets enforced by the database, degradation, connection hygiene."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import OperationalError, connections, transaction

from core import aliases
from core.db_backends import breaker
from core.errors import NotFound, SourceUnavailable
from core.services import fanout
from core.services.fanout import close_worker_connections, fan_out
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
    """A worker thread keeps its connection while healthy (per thread, as the request threads:
    CONN_MAX_AGE; with DB_POOL=1 a PostgreSQL one goes back to the pool after each part), and
    after an error checks it with a round trip (kept when it still answers; an SQLite handle is
    closed: it always counts as usable)."""
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
        if wrapper.settings_dict["OPTIONS"].get("pool"):
            assert wrapper.connection is None
        else:
            assert wrapper.connection is not None

    def failing(alias: str) -> None:
        seen[alias] = connections[alias]
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    got = fan_out({alias: failing for alias in DBS})
    assert got.degraded == DBS
    for wrapper in seen.values():
        if wrapper is connections[wrapper.alias]:
            continue  # the part that ran on the caller
        if wrapper.vendor == "sqlite" or wrapper.settings_dict["OPTIONS"].get("pool"):
            assert wrapper.connection is None
        else:  # checked (the error), found answering, kept
            assert wrapper.connection is not None and not wrapper.errors_occurred


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
    """The first part runs on the calling thread (here on the connection a token lookup left on
    default: no hand-off, no pool check-out), the others in the pool; the caller keeps its
    connection."""
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


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_first_part_whose_connection_is_in_a_transaction_runs_in_the_pool() -> None:
    """``SET LOCAL statement_timeout`` would outlive the part inside the caller's transaction."""
    threads: dict[str, threading.Thread] = {}
    with transaction.atomic(using=aliases.DEFAULT):
        got = fan_out({alias: select_one_noting_thread(threads) for alias in DBS})
    assert got.degraded == []
    assert all(thread is not threading.current_thread() for thread in threads.values())


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_statements_on_several_databases_overlap_in_time() -> None:
    """One statement per database, each keeping its database busy 0.3 s: together about one."""
    sleeps = {alias: run_sql(slow_sql(alias, 0.3)) for alias in DBS if connections[alias].vendor != "sqlite"}
    with state.isolated() as current, Stopwatch() as watch:
        got = fan_out(sleeps)
    assert got.degraded == []
    assert watch.seconds < 0.3 * 2
    assert all(got.sources[alias] >= 290 for alias in sleeps)
    assert {alias: int(current.timings[alias][0]) for alias in sleeps} == dict.fromkeys(sleeps, 1)


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_database_known_down_degrades_its_part_at_once() -> None:
    """With the breaker open (the server refused connections a moment ago), a part on it fails at
    once, on the caller or in the pool, and the other parts answer. (The breaker guards new
    connections: a thread that still holds a healthy one to the server uses it, so every thread
    starts without one here.)"""
    for alias in DBS:
        connections[alias].close()
    close_worker_connections()
    pg = [alias for alias in DBS if connections[alias].vendor == "postgresql"]
    down = pg[0]
    breaker.breaker_for(down, connections[down].settings_dict).failure(OSError("down for the test"))
    for first in (down, aliases.USERS if down != aliases.USERS else aliases.DEFAULT):
        parts = {first: run_sql("SELECT 1"), **{alias: run_sql("SELECT 1") for alias in DBS if alias != first}}
        with Stopwatch() as watch:
            got = fan_out(parts)
        assert watch.seconds < 0.5
        assert got.degraded == [down]
        assert all(got.results[alias] == [(1,)] for alias in DBS if alias != down)


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
def test_a_cheap_part_runs_on_the_calling_thread_and_the_others_in_the_pool() -> None:
    """The first part and every cheap part (a cache GET) run on the caller; the rest are handed off."""
    caller = threading.current_thread()
    ran: dict[str, threading.Thread] = {}

    def note(key: str):
        def run(alias):  # type: ignore[no-untyped-def]
            ran[key] = threading.current_thread()
            return key

        return run

    first, second, third = DBS[:3]
    got = fan_out(
        {
            first: fanout.part(first, note(first)),
            second: fanout.part(second, note(second)),
            "cache": fanout.part("cache", note("cache"), cheap=True),
            third: fanout.part(third, note(third)),
        }
    )
    assert got.degraded == [] and got.results["cache"] == "cache"
    assert ran[first] is caller and ran["cache"] is caller
    assert ran[second] is not caller and ran[third] is not caller
