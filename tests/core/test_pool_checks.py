"""Pooled PostgreSQL connections: one the server dropped while it sat idle is replaced, not used.

The pool is Django's own: with ``CONN_HEALTH_CHECKS`` it checks every connection it hands out with
a round trip (the cost is written down in ``core/db_backends/postgresql/base.py``).
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.conf import settings
from django.db import connections

from core import aliases

pytestmark = [pytest.mark.real_engines, pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)]


def _backend_pid() -> int:
    with connections[aliases.ANALYTICS].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_connection_killed_while_idle_in_the_pool_is_replaced():
    connection = connections[aliases.ANALYTICS]
    if not connection.settings_dict["OPTIONS"].get("pool"):
        pytest.fail("analytics_db should be pooled on the real engines")
    first = _backend_pid()
    connection.close()  # back to the pool
    # every connection the pool holds to this database (psycopg's pool hands them out FIFO)
    killed = _terminate_pooled_backends(connection)
    assert killed >= 1
    time.sleep(0.3)  # idle a while: the pool checks it on check-out
    second = _backend_pid()  # would raise OperationalError if the dead connection were handed out
    assert second != first


def _terminate_pooled_backends(connection) -> int:
    cfg = settings.DATABASES[aliases.ANALYTICS]
    with psycopg.connect(
        host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], dbname="postgres", autocommit=True
    ) as admin:
        return admin.execute(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [connection.settings_dict["NAME"]],
        ).fetchone()[0]


def test_a_connection_killed_moments_after_it_was_handed_back_is_replaced_too():
    connection = connections[aliases.ANALYTICS]
    first = _backend_pid()
    connection.close()
    assert _terminate_pooled_backends(connection) >= 1  # waits until the backends are gone
    second = _backend_pid()  # would raise OperationalError if the dead connection were handed out
    assert second != first


@pytest.fixture
def round_trip_checks(monkeypatch) -> list:
    """The connections psycopg's round-trip check (``check_connection``) was run on. Django's pool
    takes the check when it is built, so the analytics pool is built again around the test."""
    from psycopg_pool import ConnectionPool

    checked: list = []
    real_check = ConnectionPool.check_connection
    monkeypatch.setattr(
        ConnectionPool, "check_connection", staticmethod(lambda conn: (checked.append(conn), real_check(conn))[1])
    )
    connections[aliases.ANALYTICS].close_pool()
    yield checked
    connections[aliases.ANALYTICS].close()
    connections[aliases.ANALYTICS].close_pool()


def _check_out_and_back(times: int) -> None:
    for _ in range(times):
        _backend_pid()
        connections[aliases.ANALYTICS].close()


def test_every_check_out_makes_the_round_trip(round_trip_checks):
    _check_out_and_back(3)
    assert len(round_trip_checks) == 3  # one per check-out
