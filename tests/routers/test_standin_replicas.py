"""Replica routing against two stand-in replicas of users_db (separate PostgreSQL databases).

Rows are put straight onto a replica (or only onto the primary), so where a read went is proven by
what it finds, not only by which alias ran the query. Run by ``scripts/test`` in its second pass,
with ``USERS_DATABASE_REPLICA_URLS`` naming two databases.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time

import pytest
from django.db import connections, router, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory, override_settings

from api.middleware import RequestMiddleware
from core import aliases
from core.users.models import User
from routers import health, state
from tests.conftest import standin_replicas
from tests.factories import make_user

REPLICAS = standin_replicas()
pytestmark = [
    pytest.mark.standin_replica,
    pytest.mark.django_db(transaction=True, databases=[aliases.USERS, *REPLICAS]),
]


def _put(alias: str, username: str) -> None:
    User.objects.using(alias).create(username=username, email=f"{username}@example.com")


def _usernames() -> set[str]:
    return set(User.objects.values_list("username", flat=True))


@pytest.fixture(autouse=True)
def replica_rows():
    assert len(REPLICAS) >= 2, "this pass needs two stand-in replicas"
    for index, alias in enumerate(REPLICAS, start=1):
        _put(alias, f"only_on_replica_{index}")
    yield
    for alias in REPLICAS:  # raw SQL: no model signals (cache invalidation) for stand-in rows
        with connections[alias].cursor() as cursor:
            cursor.execute(f"DELETE FROM {User._meta.db_table}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def break_replica():
    """Point a replica alias at a closed port for real (connection refused); restore afterwards."""
    saved: dict[str, dict] = {}

    def brk(alias: str) -> None:
        connection = connections[alias]
        saved[alias] = copy.deepcopy(connection.settings_dict)
        connection.close()
        connection.close_pool()
        connection.settings_dict["PORT"] = str(_closed_port())
        pool = connection.settings_dict["OPTIONS"].get("pool")
        if isinstance(pool, dict):  # DB_POOL=1: fail fast (the port refuses anyway)
            pool["timeout"] = 0.5

    def fix(alias: str) -> None:
        connection = connections[alias]
        connection.close()
        connection.close_pool()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved.pop(alias))

    yield brk, fix
    for alias in list(saved):
        fix(alias)


def test_reads_outside_writes_go_to_one_replica(queries):
    with state.isolated():
        found = _usernames()
    assert found in ({"only_on_replica_1"}, {"only_on_replica_2"})


def test_the_same_replica_serves_the_whole_request(queries):
    with state.isolated() as current:
        with queries(REPLICAS[0]) as q1, queries(REPLICAS[1]) as q2, queries(aliases.USERS) as qp:
            for _ in range(5):
                _usernames()
        chosen = current.replica_choice[aliases.USERS]
    counts = {REPLICAS[0]: len(q1), REPLICAS[1]: len(q2)}
    assert counts[chosen] == 5
    assert sum(counts.values()) == 5
    assert len(qp) == 0


def test_requests_take_turns_across_replicas():
    chosen = []
    for _ in range(4):
        with state.isolated():
            chosen.append(router.db_for_read(User))
    assert set(chosen) == set(REPLICAS)
    assert chosen[0] != chosen[1] and chosen[0] == chosen[2]


def test_after_a_write_reads_stay_on_the_primary_for_the_request():
    with state.isolated():
        user = make_user(username="fresh_on_primary")
        assert User.objects.filter(pk=user.pk).exists()
        assert "fresh_on_primary" in _usernames()
        assert not any(name.startswith("only_on_replica") for name in _usernames())
    with state.isolated():  # the next request is not pinned
        assert "fresh_on_primary" not in _usernames()


def test_inside_atomic_on_the_primary_reads_go_to_the_primary():
    make_user(username="primary_only")
    with state.isolated():
        with transaction.atomic(using=aliases.USERS):
            assert "primary_only" in _usernames()
        assert "primary_only" not in _usernames()


def test_use_primary_forces_the_primary():
    make_user(username="primary_only")
    with state.isolated():
        with state.use_primary():
            assert "primary_only" in _usernames()
        assert "primary_only" not in _usernames()


def test_a_failed_replica_is_skipped_then_retried_after_the_window(break_replica):
    brk, fix = break_replica
    bad, good = REPLICAS[1], REPLICAS[0]
    brk(bad)
    with override_settings(REPLICA_HEALTH_WINDOW_SECONDS=1.0):
        chosen = []
        for _ in range(4):
            with state.isolated():
                chosen.append(router.db_for_read(User))
                assert _usernames() == {"only_on_replica_1"}
        assert set(chosen) == {good}
        assert health.recently_failed(bad)
        fix(bad)
        time.sleep(1.1)
        chosen = []
        for _ in range(4):
            with state.isolated():
                chosen.append(router.db_for_read(User))
        assert set(chosen) == {good, bad}


def test_all_replicas_down_falls_back_to_the_primary(break_replica):
    brk, _ = break_replica
    for alias in REPLICAS:
        brk(alias)
    make_user(username="primary_only")
    with state.isolated():
        assert router.db_for_read(User) == aliases.USERS
        assert "primary_only" in _usernames()


def _body(response: HttpResponse) -> dict:
    return json.loads(response.content)


def _read_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"alias": router.db_for_read(User), "names": sorted(_usernames())})


def _write_view(request: HttpRequest) -> HttpResponse:
    make_user()
    return _read_view(request)


def test_pin_cookie_keeps_a_client_on_the_primary_for_the_window():
    rf = RequestFactory()
    with override_settings(REPLICA_PIN_SECONDS=1.0):
        write = RequestMiddleware(_write_view)(rf.post("/"))
        assert _body(write)["alias"] == aliases.USERS
        cookie = write.cookies["switchyard_pin"].value
        assert aliases.USERS in cookie

        pinned_request = rf.get("/")
        pinned_request.COOKIES["switchyard_pin"] = cookie
        assert _body(RequestMiddleware(_read_view)(pinned_request))["alias"] == aliases.USERS

        other_client = RequestMiddleware(_read_view)(rf.get("/"))
        assert _body(other_client)["alias"] in REPLICAS  # no leak to other requests

        header_request = rf.get("/", HTTP_X_SWITCHYARD_PIN=cookie)
        assert _body(RequestMiddleware(_read_view)(header_request))["alias"] == aliases.USERS

        time.sleep(1.1)
        expired = rf.get("/")
        expired.COOKIES["switchyard_pin"] = cookie
        assert _body(RequestMiddleware(_read_view)(expired))["alias"] in REPLICAS


def test_a_forged_pin_cannot_outlast_the_configured_window():
    rf = RequestFactory()
    with override_settings(REPLICA_PIN_SECONDS=1.0):
        request = rf.get("/")
        request.COOKIES["switchyard_pin"] = f"users_db|{time.time() + 3600}"
        assert _body(RequestMiddleware(_read_view)(request))["alias"] == aliases.USERS
        time.sleep(1.1)
        request = rf.get("/")
        request.COOKIES["switchyard_pin"] = f"users_db|{time.time() - 5}"
        assert _body(RequestMiddleware(_read_view)(request))["alias"] in REPLICAS


def test_pin_state_does_not_leak_into_other_threads_unless_copied():
    results: dict[str, str] = {}

    def read(key: str) -> None:
        results[key] = router.db_for_read(User)
        connections.close_all()

    with state.isolated():
        make_user()  # pins users_db in this context
        assert router.db_for_read(User) == aliases.USERS
        plain = threading.Thread(target=read, args=("plain",))
        copied = threading.Thread(target=state.with_context(read), args=("copied",))
        plain.start(), copied.start()
        plain.join(), copied.join()
    assert results["plain"] in REPLICAS
    assert results["copied"] == aliases.USERS


def _names(queryset) -> set[str]:
    return set(queryset.values_list("username", flat=True))


def test_primary_and_replica_querysets_read_where_they_say():
    """``User.objects.primary()`` reads the primary whatever the request's routing; ``.replica()``
    the replica the routers chose for the request, the same one for every read of it (issue 12)."""
    make_user(username="primary_only")
    with state.isolated():
        assert "primary_only" in _names(User.objects.primary())
        assert not any(name.startswith("only_on_replica") for name in _names(User.objects.primary()))
        on_replica = _names(User.objects.replica())
        assert "primary_only" not in on_replica
        assert len(on_replica) == 1 and next(iter(on_replica)).startswith("only_on_replica")
        assert User.objects.replica().db == router.db_for_read(User) in REPLICAS
        assert _names(User.objects.replica()) == on_replica  # one choice per request
        assert User.objects.primary().db == aliases.USERS


def test_replica_queryset_follows_read_your_writes():
    with state.isolated():
        make_user(username="fresh_on_primary")
        assert User.objects.replica().db == aliases.USERS
        assert "fresh_on_primary" in _names(User.objects.replica())
