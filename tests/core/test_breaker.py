"""A database that refuses connections fails fast after the first failure, and recovers by itself."""

from __future__ import annotations

import copy
import socket
import time

import pytest
from django.db import OperationalError, connections
from django.test import override_settings

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.db_backends import breaker
from core.legacy.models import LegacyCustomer
from routers import state

pytestmark = [pytest.mark.real_engines]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pointed_at_closed_port():
    saved: dict[str, dict] = {}

    def point(alias: str) -> None:
        connection = connections[alias]
        saved[alias] = copy.deepcopy(connection.settings_dict)
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        connection.settings_dict["PORT"] = str(_closed_port())
        pool = connection.settings_dict["OPTIONS"].get("pool")
        if isinstance(pool, dict):
            pool["timeout"] = 5.0

    def restore(alias: str) -> None:
        connection = connections[alias]
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved.pop(alias))

    yield point, restore
    for alias in list(saved):
        restore(alias)


def _timed_failure(fn) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    with pytest.raises(OperationalError) as info:
        fn()
    elapsed = time.perf_counter() - started
    return elapsed, str(info.value)


@pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)
@override_settings(DB_BREAKER_SECONDS=0.5)
def test_postgresql_down_fails_fast_after_the_first_failure_then_recovers(pointed_at_closed_port):
    point, restore = pointed_at_closed_port
    point(aliases.ANALYTICS)
    with state.isolated() as current:
        first, _ = _timed_failure(lambda: AnalyticsEvent.objects.count())
        # the failed attempt is time spent on that alias (Server-Timing names it too)
        assert current.timings[aliases.ANALYTICS][1] > 0
    # Even the first attempt does not wait for the pool's 5 s timeout: a server never reached
    # by this process is probed directly first, and a refused connection answers at once.
    assert first < 1.0, f"the first failure took {first:.2f}s"
    assert breaker.is_open(aliases.ANALYTICS)
    connections[aliases.ANALYTICS].close()
    second, message = _timed_failure(lambda: AnalyticsEvent.objects.count())
    assert second < 0.05, f"the second failure took {second:.3f}s (first {first:.3f}s)"
    assert "analytics_db is unavailable" in message

    # After the window one probe tries again: still refused -> still failing, and fast.
    time.sleep(0.6)
    connections[aliases.ANALYTICS].close()
    third, _ = _timed_failure(lambda: AnalyticsEvent.objects.count())
    assert third < 0.5

    # The server is back: the next attempt after the window probes, succeeds and closes the breaker.
    restore(aliases.ANALYTICS)
    time.sleep(0.6)
    assert AnalyticsEvent.objects.count() >= 0
    assert not breaker.is_open(aliases.ANALYTICS)


@pytest.mark.django_db(databases=[aliases.LEGACY], transaction=True)
@override_settings(DB_BREAKER_SECONDS=0.5)
def test_mariadb_down_fails_fast_after_the_first_failure(pointed_at_closed_port):
    point, restore = pointed_at_closed_port
    point(aliases.LEGACY)
    _timed_failure(lambda: LegacyCustomer.objects.count())
    connections[aliases.LEGACY].close()
    second, message = _timed_failure(lambda: LegacyCustomer.objects.count())
    assert second < 0.05 and "legacy_db is unavailable" in message
    restore(aliases.LEGACY)
    time.sleep(0.6)
    assert LegacyCustomer.objects.count() >= 0


@pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)
def test_a_breaker_is_per_server_so_a_repointed_alias_starts_clean(pointed_at_closed_port):
    point, restore = pointed_at_closed_port
    point(aliases.ANALYTICS)
    _timed_failure(lambda: AnalyticsEvent.objects.count())
    restore(aliases.ANALYTICS)
    assert AnalyticsEvent.objects.count() >= 0  # no waiting for the window: another server key
