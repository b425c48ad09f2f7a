"""core.request_upkeep against Django's own receivers, on real PostgreSQL connections.

Each scenario runs twice: with Django's receivers on the request signals (what the test client and
``manage.py runserver`` use) and with the upkeep ``core/wsgi.py`` installs (gunicorn); the outcome
must be the same: which connections survive a request, which are dropped, what is forgotten.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import psycopg
import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connections, transaction
from django.db.utils import OperationalError
from django.test import override_settings

from core import aliases, request_upkeep
from core.db_backends.fresh import fresh_connection

pytestmark = [pytest.mark.real_engines, pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)]

ALIAS = aliases.ANALYTICS


@pytest.fixture(params=["django", "upkeep"])
def receivers(request) -> Iterator[str]:
    """The request signals' receivers of the test: Django's, or core.request_upkeep's."""
    connections[ALIAS].close()  # every scenario starts without a connection
    if request.param == "upkeep":
        request_upkeep.install()
    try:
        yield request.param
    finally:
        if request.param == "upkeep":
            request_upkeep.uninstall()


def _started() -> None:
    request_started.send(sender=__name__, environ={})


def _finished() -> None:
    request_finished.send(sender=__name__)


def _pid() -> int:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _request() -> int:
    """One request's use of analytics_db between the request signals: its backend's pid."""
    _started()
    pid = _pid()
    _finished()
    return pid


def _terminate(pid: int) -> None:
    cfg = settings.DATABASES[ALIAS]
    with psycopg.connect(
        host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], dbname="postgres", autocommit=True
    ) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]


def test_a_connection_is_kept_across_requests(receivers):
    first = _request()
    assert [_request() for _ in range(3)] == [first] * 3
    if receivers == "upkeep":
        assert connections[ALIAS] in request_upkeep.opened()


def test_one_killed_while_idle_is_replaced_at_the_next_request(receivers):
    first = _request()
    _terminate(first)
    second = _request()  # would raise OperationalError if the dead connection were used
    assert second != first


def test_one_that_failed_in_a_request_is_closed_at_its_end(receivers):
    _started()
    _terminate(_pid())
    with pytest.raises(OperationalError):
        _pid()  # the request's query fails: errors_occurred, and the check finds it unusable
    _finished()
    assert connections[ALIAS].connection is None


def test_one_left_outside_autocommit_is_dropped_when_the_next_request_starts(receivers):
    _started()
    first = _pid()
    transaction.set_autocommit(False, using=ALIAS)  # the application did not restore it
    _started()  # (no request_finished: a request that never finished cleanly)
    assert connections[ALIAS].connection is None
    assert connections[ALIAS].get_autocommit()
    assert _pid() != first
    _finished()


def test_one_past_its_max_age_is_closed_at_the_end_of_the_request(receivers):
    connection = connections[ALIAS]
    configured = connection.settings_dict["CONN_MAX_AGE"]
    connection.settings_dict["CONN_MAX_AGE"] = 0  # this connection: closed after each request
    try:
        _started()
        _pid()
        _finished()
        assert connection.connection is None
    finally:
        connection.settings_dict["CONN_MAX_AGE"] = configured


def test_the_queries_of_the_last_request_are_forgotten_when_the_next_starts(receivers):
    with override_settings(DEBUG=True):  # queries are logged only then
        _started()
        _pid()
        assert len(connections[ALIAS].queries_log) >= 1
        _finished()
        _started()
        assert len(connections[ALIAS].queries_log) == 0
        _finished()


def test_another_threads_connection_is_left_alone(receivers):
    """Request signals are per thread (a fan-out part's thread has its own connections)."""
    pids: list[int] = []
    go_on = threading.Event()
    done = threading.Event()

    def other() -> None:
        pids.append(_pid())
        go_on.wait(10)
        pids.append(_pid())  # still the same session
        connections[ALIAS].close()
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    _request()
    go_on.set()
    assert done.wait(10)
    thread.join()
    assert len(pids) == 2 and pids[0] == pids[1]


def test_a_fresh_connection_is_not_noted(receivers):
    with fresh_connection(ALIAS) as wrapper, wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert wrapper not in request_upkeep.opened()


def test_a_wrapper_under_an_alias_of_its_own_connects_and_is_not_noted(receivers):
    """A wrapper made outside the handler, under a name it does not know (a script's own)."""
    wrapper = type(connections[ALIAS])(dict(connections[ALIAS].settings_dict), "scratch")
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            assert cursor.fetchone() == (1,)
        assert wrapper not in request_upkeep.opened()
    finally:
        wrapper.close()


def test_the_wsgi_entry_point_installs_it_in_place_of_djangos_receivers():
    """Imported as gunicorn imports it: Django's three connection receivers and ``close_caches``
    (the configured caches close nothing) are off the request signals and the upkeep's two are on
    (``Signal.disconnect`` answers whether it found one)."""
    script = (
        "import core.wsgi\n"
        "from django.core.cache import close_caches as k\n"
        "from django.core.signals import request_finished as f, request_started as s\n"
        "from django.db import close_old_connections as c, reset_queries as r\n"
        "uid = 'switchyard-request-upkeep'\n"
        "print(s.disconnect(r), s.disconnect(c), f.disconnect(c), f.disconnect(k), s.disconnect(dispatch_uid=uid), "
        "f.disconnect(dispatch_uid=uid))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False", "False", "False", "True", "True"]


def test_close_caches_stays_when_a_cache_closes_something():
    """Django's memcached backends close their client connections at the end of each request."""
    assert request_upkeep.caches_close_nothing()  # this project's caches: database, Redis, memory
    memcached = {"BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache", "LOCATION": "127.0.0.1:11211"}
    with override_settings(CACHES={**settings.CACHES, "sessions": memcached}):
        assert not request_upkeep.caches_close_nothing()
