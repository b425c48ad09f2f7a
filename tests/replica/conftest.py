"""The replica tests run only against a real streaming replica (``scripts/replica start``).

They carry ``@pytest.mark.replica``. Without a replica configured they are deselected (not
skipped); asking for them explicitly (``-m replica``) without one is a usage error, so a CI pass
that forgot the environment cannot go green on zero tests. Configure them with:

    scripts/replica start
    eval "$(SWITCHYARD_DB_PREFIX=sy_x scripts/replica env)"   # *_REPLICA_URLS + REPLICA_TEST_MIRROR=1
    SWITCHYARD_DB_PREFIX=sy_x scripts/test -m replica
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.db import connections

from core import aliases


def streaming_replicas() -> list[str]:
    """Replica aliases on PostgreSQL that mirror their primary's test database."""
    found = []
    for alias, db in settings.DATABASES.items():
        if aliases.primary_of(alias) == alias:
            continue
        if "postgresql" in db["ENGINE"] and db.get("TEST", {}).get("MIRROR") == aliases.primary_of(alias):
            found.append(alias)
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if streaming_replicas():
        return
    expression = (config.option.markexpr or "").strip()
    if re.search(r"(?<![\w])replica(?![\w])", expression) and not re.search(r"not\s+replica(?![\w])", expression):
        raise pytest.UsageError(
            "-m replica needs a streaming replica: scripts/replica start, then set "
            "DATABASE_REPLICA_URLS / USERS_DATABASE_REPLICA_URLS and REPLICA_TEST_MIRROR=1 "
            "(scripts/replica env prints them)"
        )
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("replica") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture
def replica_sql():  # type: ignore[no-untyped-def]
    """Run one statement on an alias and return the first column of the first row."""

    def run(alias: str, sql: str, params: tuple = ()) -> object:
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None

    return run


def _replica_server(alias: str) -> dict[str, object]:
    db = settings.DATABASES[alias]
    return {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "dbname": "postgres", "autocommit": True}


def catch_up(replica_aliases: list[str], timeout: float = 180.0) -> None:
    """Resume replay and wait until each replica has replayed what its primary has written so far
    (the test databases were just created there: a lagging replica does not have them yet)."""
    import time

    import psycopg

    for alias in replica_aliases:
        primary = aliases.primary_of(alias)
        with connections[primary].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            target = cursor.fetchone()[0]
        with psycopg.connect(**_replica_server(alias)) as conn:  # type: ignore[arg-type]
            conn.execute("SELECT pg_wal_replay_resume()")
            deadline = time.monotonic() + timeout
            while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{alias} did not replay up to {target} within {timeout}s")
                time.sleep(0.2)


@pytest.fixture(scope="session", autouse=True)
def _replicas_caught_up(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Replay is never left paused, and the replicas hold the test databases before any test."""
    replicas = streaming_replicas()
    if replicas:
        with django_db_blocker.unblock():
            catch_up(replicas)
    yield
    if replicas:
        for alias in replicas:
            import psycopg

            with psycopg.connect(**_replica_server(alias)) as conn:  # type: ignore[arg-type]
                conn.execute("SELECT pg_wal_replay_resume()")
