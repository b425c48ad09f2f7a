"""PostgreSQL connections kept per thread (the default, ``DB_POOL=0``): one the server dropped while
it sat idle is replaced at the next request, not used; a kept connection is checked by a socket
poll, and with a round trip once it has not answered one for ``DB_CHECK_AFTER_IDLE_SECONDS``.
Django's pool (``DB_POOL=1``) still works. (core/db_backends/postgresql/base.py)
"""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import close_old_connections, connections
from django.db.backends.postgresql import base as django_postgresql
from django.test import override_settings

from core import aliases
from tests.factories import djangos_pool

pytestmark = [pytest.mark.real_engines, pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)]


def _request() -> int:
    """One request's use of analytics_db, with Django's request boundaries: its backend's pid."""
    close_old_connections()  # request_started
    with connections[aliases.ANALYTICS].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    close_old_connections()  # request_finished
    return pid


def _terminate(pid: int) -> None:
    cfg = settings.DATABASES[aliases.ANALYTICS]
    with psycopg.connect(
        host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], dbname="postgres", autocommit=True
    ) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]


@pytest.fixture
def round_trips(monkeypatch) -> list:
    """Every round-trip check (Django's own ``is_usable``: ``SELECT 1``) the backend falls back to."""
    calls: list = []
    real = django_postgresql.DatabaseWrapper.is_usable
    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", lambda self: (calls.append(1), real(self))[1])
    return calls


def test_the_connection_is_kept_across_requests_and_checked_by_a_poll(round_trips):
    connection = connections[aliases.ANALYTICS]
    if connection.settings_dict["OPTIONS"].get("pool"):
        pytest.fail("analytics_db should keep its connection per thread by default (DB_POOL=0)")
    first = _request()
    assert [_request() for _ in range(3)] == [first] * 3  # the same server session
    assert round_trips == []  # a poll each time, within the window


def test_a_connection_killed_while_idle_is_replaced_at_the_next_request(round_trips):
    first = _request()
    _terminate(first)  # waits until the backend is gone: the server closed its socket
    second = _request()  # would raise OperationalError if the dead connection were used
    assert second != first
    assert _request() == second


def test_after_the_window_the_check_is_a_round_trip(round_trips):
    _request()
    with override_settings(DB_CHECK_AFTER_IDLE_SECONDS=0):
        pids = {_request() for _ in range(3)}
    assert len(pids) == 1  # still the same connection: the round trip found it well
    assert len(round_trips) == 3  # one per request


def test_djangos_pool_still_works_when_turned_on():
    """``DB_POOL=1``: Django's pool as Django ships it (a round trip per check-out)."""
    from core.db_backends.postgresql.base import pools

    with djangos_pool(aliases.ANALYTICS, max_size=2):
        first = _request()
        _terminate(first)
        assert _request() != first  # the pool's check replaced the dropped connection
        assert aliases.ANALYTICS in pools()
