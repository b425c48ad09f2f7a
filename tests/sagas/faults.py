"""Real faults for tests: a database made unreachable, a table locked by another connection,
a constraint that refuses a row. No database is mocked; each fault is produced on the real engine."""

from __future__ import annotations

import copy
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.models import SagaRun
from core.users.models import User


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an ``Exception``, so nothing in-process compensates it."""


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def unreachable(alias: str) -> Iterator[None]:
    """Point ``alias`` at a closed port (PostgreSQL/MySQL) or an unopenable file (SQLite)."""
    original = connections[alias]
    settings_dict = copy.deepcopy(original.settings_dict)
    options = settings_dict.setdefault("OPTIONS", {})
    if original.vendor == "sqlite":
        settings_dict["NAME"] = "/nonexistent-switchyard-dir/unreachable.sqlite3"
    else:
        settings_dict["HOST"] = "127.0.0.1"
        settings_dict["PORT"] = closed_port()
        options.pop("pool", None)
        options["connect_timeout"] = 1
    broken = original.__class__(settings_dict, alias)
    connections[alias] = broken
    try:
        yield
    finally:
        broken.close()
        connections[alias] = original


@contextmanager
def table_locked(alias: str, table: str) -> Iterator[None]:
    """Hold ``LOCK TABLE <table> IN ACCESS EXCLUSIVE MODE`` (PostgreSQL) or the database's write
    lock (SQLite, ``BEGIN EXCLUSIVE``) from another connection until the block ends."""
    connection = connections[alias]
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        import psycopg

        other = psycopg.connect(
            dbname=settings_dict["NAME"],
            user=settings_dict["USER"] or None,
            password=settings_dict["PASSWORD"] or None,
            host=settings_dict["HOST"] or None,
            port=settings_dict["PORT"] or None,
        )
        try:
            other.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
            yield
        finally:
            other.rollback()
            other.close()
    elif connection.vendor == "sqlite":
        other = sqlite3.connect(settings_dict["NAME"], isolation_level=None, timeout=5)
        try:
            other.execute("BEGIN EXCLUSIVE")
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        raise NotImplementedError(connection.vendor)


@contextmanager
def refuse_inserts(alias: str, table: str, column: str, value: str) -> Iterator[None]:
    """A real constraint on ``table`` refusing rows whose ``column`` equals ``value``:
    a CHECK constraint on PostgreSQL, a ``RAISE(ABORT)`` trigger on SQLite."""
    connection = connections[alias]
    name = f"test_refuse_{table}_{column}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT {name} CHECK ("{column}" <> %s) NOT VALID', [value])
            drop = f'ALTER TABLE "{table}" DROP CONSTRAINT {name}'
        elif connection.vendor == "sqlite":
            quoted = value.replace("'", "''")
            cursor.execute(
                f'CREATE TRIGGER {name} BEFORE INSERT ON "{table}" WHEN NEW."{column}" = \'{quoted}\' '
                f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
            )
            drop = f"DROP TRIGGER {name}"
        else:
            raise NotImplementedError(connection.vendor)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(drop)


def row_counts() -> dict[str, int]:
    """Rows of every application table, on every database (what a failure must leave unchanged)."""
    return {
        f"{aliases.USERS}.users": User.objects.count(),
        f"{aliases.DEFAULT}.profiles": UserProfile.objects.count(),
        f"{aliases.DEFAULT}.posts": Post.objects.count(),
        f"{aliases.ANALYTICS}.events": AnalyticsEvent.objects.count(),
    }


def cache_count() -> int:
    return CacheEntry.objects.count()


def last_saga() -> SagaRun:
    return SagaRun.objects.order_by("-id").first()
