"""PostgreSQL ``timestamptz`` values are parsed by psycopg's C loader and come out exactly as
Django's own (slower, Python) loader gives them: aware datetimes in UTC."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connections
from django.db.backends.postgresql.psycopg_any import register_tzloader

from core import aliases
from core.db_backends.postgresql.base import UtcTimestamptzLoader

pytestmark = [pytest.mark.real_engines, pytest.mark.django_db(databases=[aliases.DEFAULT])]

LITERALS = [
    "2026-11-28 18:01:52.123456+00",
    "2026-03-29 01:30:00+01",  # an offset
    "1969-12-31 23:59:59.999999-08",  # before the epoch, negative offset
    "0001-01-01 00:00:00+00",
    "9999-12-31 23:59:59.999999+00",
    "2024-02-29 12:00:00.5+05:30",  # a half-hour offset, a leap day
]


def _fetch(cursor) -> list:
    cursor.execute("SELECT " + ", ".join("%s::timestamptz" for _ in LITERALS), LITERALS)
    return list(cursor.fetchone())


def test_the_connection_uses_the_c_parser_and_agrees_with_djangos_loader() -> None:
    connection = connections[aliases.DEFAULT]
    connection.ensure_connection()
    assert connection.connection.adapters.get_loader(1184, 0) is UtcTimestamptzLoader
    with connection.cursor() as cursor:
        ours = _fetch(cursor)
    raw = connection.connection
    with raw.cursor() as plain:
        register_tzloader(dt.UTC, plain)  # Django's loader, on this cursor only
        theirs = _fetch(plain)
    assert ours == theirs
    assert all(value.tzinfo is dt.UTC for value in ours)


def test_values_from_a_session_in_another_time_zone_still_come_out_in_utc() -> None:
    connection = connections[aliases.DEFAULT]
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'America/New_York'")
        try:
            with connection.connection.cursor() as fresh:  # a loader made under that zone
                fresh.execute("SELECT '2026-07-01 12:00:00+00'::timestamptz")
                (value,) = fresh.fetchone()
        finally:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert value == dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
    assert value.tzinfo is dt.UTC
