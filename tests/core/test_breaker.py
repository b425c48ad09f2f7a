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


class StartingUpServer:
    """A TCP server that answers every PostgreSQL session as a server starting up does: the
    startup packet gets ``FATAL 57P03 the database system is starting up`` (what libpq sees
    during crash recovery), SSL and GSS requests a refusal first."""

    def __init__(self) -> None:
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import struct

        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with client:
                while True:
                    head = client.recv(8)
                    if len(head) < 8:
                        break
                    length, code = struct.unpack("!ii", head)
                    if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not here
                        client.sendall(b"N")
                        continue
                    client.recv(length - 8)
                    fields = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\0"
                    client.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)
                    break

    def close(self) -> None:
        self.sock.close()


def test_a_server_starting_up_or_refusing_at_once_is_probed_again_a_slow_failure_waits_the_window() -> None:
    """A failure that took a timeout keeps the breaker shut for its window (each attempt would hold
    a thread that long). One that came at once (the server starting up, a refused connection) is
    probed again by the next attempt, so the first request after the server is ready gets through
    (with a window, each gunicorn worker would go on refusing requests for up to that long)."""
    import psycopg

    server = StartingUpServer()
    try:
        with pytest.raises(psycopg.OperationalError) as starting:
            psycopg.connect(host="127.0.0.1", port=server.port, user="x", dbname="x", connect_timeout=2)
    finally:
        server.close()
    assert "starting up" in str(starting.value)
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect(host="127.0.0.1", port=_closed_port(), user="x", dbname="x", connect_timeout=2)

    probes: list[str] = []
    brk = breaker.Breaker("fast_failure_test")
    brk.failure(starting.value)  # whatever it took: the server answered "starting up"
    brk.allow(lambda: probes.append("ready"))  # probed at once: the server is ready now
    assert probes == ["ready"] and brk.failed_at is None

    brk.failure(refused.value, seconds=0.002)
    brk.allow(lambda: probes.append("back"))
    assert probes == ["ready", "back"] and brk.failed_at is None

    # A refusal says by itself that it came at once, even when a loaded machine took long to report
    # it (the fault drill's primary restart: writes kept failing for a 2 s window after it was back).
    brk.failure(refused.value, seconds=1.5)
    brk.allow(lambda: probes.append("back again"))
    assert probes == ["ready", "back", "back again"] and brk.failed_at is None

    timed_out = psycopg.OperationalError("connection timeout expired")
    brk.failure(timed_out, seconds=1.5)  # as slow as a timeout
    with pytest.raises(breaker.BreakerOpen):
        brk.allow(lambda: probes.append("too soon"))
    brk.failure(timed_out)  # duration unknown: the window too
    with pytest.raises(breaker.BreakerOpen):
        brk.allow(lambda: probes.append("too soon"))
    assert probes == ["ready", "back", "back again"]

    brk.failure(starting.value)
    with pytest.raises(breaker.BreakerOpen):
        brk.allow(lambda: (_ for _ in ()).throw(starting.value))  # still starting: refused, no window
    brk.allow(lambda: probes.append("ready again"))
    assert probes == ["ready", "back", "back again", "ready again"] and not brk.fast


def test_callers_arriving_while_a_probe_is_under_way_wait_briefly_for_its_verdict() -> None:
    """After a slow failure's window, one caller probes; the others do not get a 503 for arriving
    during that probe when it succeeds within moments, and are refused when it fails."""
    import threading

    brk = breaker.Breaker("probe_wait_test")
    brk.failure(TimeoutError("timed out"), seconds=2.0)
    brk.failed_at -= 10  # the window is over
    started, release = threading.Event(), threading.Event()

    def slow_ok_probe() -> None:
        started.set()
        release.wait(5)

    prober = threading.Thread(target=brk.allow, args=(slow_ok_probe,))
    prober.start()
    assert started.wait(5)
    threading.Timer(0.05, release.set).start()
    brk.allow(lambda: pytest.fail("a second probe while one is under way"))  # waits, then passes
    prober.join()
    assert brk.failed_at is None

    brk.failure(TimeoutError("timed out"), seconds=2.0)
    brk.failed_at -= 10
    started.clear()
    release.clear()

    def slow_failing_probe() -> None:
        started.set()
        release.wait(5)
        raise TimeoutError("still timed out")

    prober = threading.Thread(target=lambda: pytest.raises(breaker.BreakerOpen, brk.allow, slow_failing_probe))
    prober.start()
    assert started.wait(5)
    threading.Timer(0.05, release.set).start()
    with pytest.raises(breaker.BreakerOpen):
        brk.allow(lambda: pytest.fail("a second probe while one is under way"))
    prober.join()
