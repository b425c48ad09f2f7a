"""Where the revocation generation and the budgets share one Redis (``CACHE_URL``), a request
asks Redis once: a remembered valid token's request (generation read and token budget charged)
and a remembered refused key's (generation and refused entry read, failure budget charged) are
one round trip each. Counted on the real Redis with ``MONITOR``: every command the process's kept
client sends on the test's Redis database (the commands a script runs inside Redis are left out)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from api import authentication, throttling
from core import aliases, shared_cache
from core.tokens.services import generate_key
from tests.api.conftest import assert_problem
from tests.factories import api_client

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])

REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
PATH = "/api/v1/users/?page_size=1"


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [pytestmark, pytest.mark.skipif(not redis_up(), reason=f"no Redis at {REDIS_URL}")]


@contextmanager
def one_redis(**extra: str) -> Iterator[None]:
    """Token revocation and budgets in one Redis cache, as ``CACHE_URL`` configures them."""
    caches = {
        **settings.CACHES,
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"trips-{uuid.uuid4().hex}",
        },
    }
    configured = {"API_TOKEN_REVOCATION_CACHE": "shared", "API_THROTTLE_CACHE": "shared", **extra}
    with override_settings(CACHES=caches, **configured):
        yield


@contextmanager
def commands_sent() -> Iterator[list[str]]:
    """The names of the commands the kept client of REDIS_URL sends inside the block, and those of
    any other client naming a key under the test's cache prefix (Django's own cache clients)."""
    prefix = settings.CACHES["shared"]["KEY_PREFIX"]
    kept = shared_cache.client(REDIS_URL)
    address = kept.client_info()["addr"]
    database = kept.connection_pool.connection_kwargs.get("db", 0)
    seen: list[str] = []
    sentinel = f"end-of-count-{uuid.uuid4().hex}"
    watcher = redis.Redis.from_url(REDIS_URL)
    ready = threading.Event()

    def watch() -> None:
        with watcher.monitor() as monitor:
            ready.set()
            while True:
                entry = monitor.next_command()
                if sentinel in entry["command"]:
                    return
                where = f"{entry['client_address']}:{entry['client_port']}"
                ours = where == address or prefix in entry["command"]
                if entry["client_type"] != "lua" and int(entry["db"]) == database and ours:
                    seen.append(entry["command"].split()[0].upper())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(5)
    time.sleep(0.2)  # MONITOR is on before the first command counted
    try:
        yield seen
    finally:
        redis.Redis.from_url(REDIS_URL).echo(sentinel)
        thread.join(10)
        assert not thread.is_alive()


def token_lookups(captured: CaptureQueriesContext) -> int:
    return sum(
        "api_token" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT") for q in captured.captured_queries
    )


def test_a_remembered_token_costs_one_round_trip_per_request() -> None:
    with one_redis():
        assert authentication.one_trip_url() == REDIS_URL
        client = api_client()
        assert client.get(PATH).status_code == 200  # looked up, remembered; the script loaded
        with commands_sent() as sent, CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
            for _ in range(3):
                response = client.get(PATH)
                assert response.status_code == 200
        assert sent == ["EVALSHA"] * 3
        assert token_lookups(queries) == 0
        assert response["RateLimit-Policy"].startswith('"token";')
        # a single object too (the path of the yardstick's "user" endpoint; none with this id)
        detail = "/api/v1/users/987654321/"
        assert client.get(detail).status_code == 404
        with commands_sent() as sent:
            assert client.get(detail).status_code == 404
        assert sent == ["EVALSHA"]


def test_a_remembered_refused_key_costs_one_round_trip() -> None:
    with one_redis():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {generate_key()}")
        assert_problem(client.get(PATH), 401)  # looked up once, remembered
        with commands_sent() as sent:
            response = client.get(PATH)
        assert sent == ["EVALSHA"]
        assert_problem(response, 401)
        assert response["WWW-Authenticate"] == "Token"
        assert response["RateLimit"].startswith('"auth-failure";r=')
        # another process (nothing remembered in it): the entry in Redis, in the same one trip
        authentication.forget_all()
        with commands_sent() as sent, CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
            assert_problem(client.get(PATH), 401)
        assert sent == ["EVALSHA"]
        assert token_lookups(queries) == 0


def test_the_token_budget_counts_down_through_the_one_trip() -> None:
    from tests.api.test_rate_limit_headers import _rest, _walk_the_budget

    with one_redis(REST_FRAMEWORK=_rest("5/minute")):
        _walk_the_budget()


def test_the_failure_budget_counts_through_the_one_trip() -> None:
    with one_redis(API_AUTH_FAILURE_RATE="3/minute"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {generate_key()}")
        answers = [client.get(PATH) for _ in range(4)]
        assert [a.status_code for a in answers] == [401, 401, 401, 429]
        assert [a["RateLimit"].split(";t=")[0] for a in answers] == [
            '"auth-failure";r=2',
            '"auth-failure";r=1',
            '"auth-failure";r=0',
            '"auth-failure";r=0',
        ]
        assert 1 <= int(answers[-1]["Retry-After"]) <= 20


def test_a_new_generation_written_elsewhere_is_seen_by_the_one_trip() -> None:
    with one_redis():
        client = api_client()
        with CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
            assert [client.get(PATH).status_code for _ in range(2)] == [200, 200]
        assert token_lookups(queries) == 1
        other = redis.Redis.from_url(REDIS_URL.replace("127.0.0.1", "localhost"))  # another process
        other.set(shared_cache.key_for("shared", authentication.GENERATION_KEY), uuid.uuid4().hex)
        with CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
            assert [client.get(PATH).status_code for _ in range(2)] == [200, 200]
        assert token_lookups(queries) == 1


def test_a_revoked_token_is_refused_through_the_one_trip(django_capture_on_commit_callbacks) -> None:
    from tests.factories import make_account

    with one_redis():
        _, token = make_account()
        client = api_client(token=token)
        assert client.get(PATH).status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            token.token.revoked_at = timezone.now()
            token.token.save()
        assert_problem(client.get(PATH), 401)


def test_without_the_shared_budgets_the_token_budget_is_charged_in_process() -> None:
    """Budgets per process (API_THROTTLE_CACHE empty): no script; the throttle counts as before."""
    with one_redis(API_THROTTLE_CACHE=""):
        assert authentication.one_trip_url() is None
        throttling.forget_local()
        client = api_client()
        first = client.get(PATH)["RateLimit"]
        second = client.get(PATH)["RateLimit"]
        remaining = [int(v.split(";r=")[1].split(";")[0]) for v in (first, second)]
        assert remaining[0] - remaining[1] == 1


def test_the_early_answer_on_redis_is_drfs_in_one_round_trip() -> None:
    """RefusedKeyMiddleware on the shared Redis: DRF's answer, one round trip, the budget counted."""
    from tests.api.test_refused_early import EARLY, comparable

    with one_redis(API_AUTH_FAILURE_RATE="100/minute"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {generate_key()}")
        with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != EARLY]):
            client.get(PATH)
            drf = client.get(PATH)
        with commands_sent() as sent:
            early = client.get(PATH)
        assert sent == ["EVALSHA"]
        assert comparable(early) == comparable(drf)
        left = [int(a["RateLimit"].split(";r=")[1].split(";")[0]) for a in (drf, early)]
        assert left == [left[0], left[0] - 1]
