"""Valid tokens are remembered briefly per process (``API_TOKEN_CACHE_SECONDS``); revocation in
this process applies at once, elsewhere (here: a change the ORM's signals do not see) within that time."""

from __future__ import annotations

import time

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import authentication
from core import aliases, shared_cache
from tests.api.conftest import assert_problem
from tests.factories import IssuedTestToken, api_client, make_account

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])


def _token_lookups(client: APIClient, expected_status: int = 200) -> int:
    with CaptureQueriesContext(connections[aliases.DEFAULT]) as default:
        response = client.get("/api/v1/users/?page_size=1")
    assert response.status_code == expected_status, response.content
    return sum(
        "api_token" in q["sql"] and q["sql"].lstrip().upper().startswith("SELECT") for q in default.captured_queries
    )


def _client(token: IssuedTestToken) -> APIClient:
    return api_client(token=token)


def test_a_valid_token_is_looked_up_once_then_remembered() -> None:
    client = api_client()
    assert [_token_lookups(client) for _ in range(3)] == [1, 0, 0]


@override_settings(API_TOKEN_CACHE_SECONDS=0)
def test_zero_looks_the_token_up_on_every_request() -> None:
    client = api_client()
    assert [_token_lookups(client) for _ in range(3)] == [1, 1, 1]


def test_an_unknown_token_is_remembered_as_refused_only() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)
    assert [_token_lookups(client, 401) for _ in range(2)] == [1, 0]
    assert len(authentication._checked) == 0 and len(authentication._refused) == 1


def test_a_deleted_token_is_refused_at_once() -> None:
    _, token = make_account()
    client = _client(token)
    assert _token_lookups(client) == 1
    token.delete()
    assert_problem(client.get("/api/v1/users/"), 401)


def test_a_deactivated_user_is_refused_at_once() -> None:
    user, token = make_account()
    client = _client(token)
    assert _token_lookups(client) == 1
    user.is_active = False
    user.save()
    assert_problem(client.get("/api/v1/users/"), 401)


def test_an_account_no_longer_staff_loses_its_staff_scopes_at_once() -> None:
    user, token = make_account(staff=True)
    client = _client(token)
    body = {"username": "made-by-staff", "email": "made@example.com"}
    assert client.post("/api/v1/users/", body, format="json").status_code == 201
    user.is_staff = False
    user.save()
    refused = assert_problem(
        client.post("/api/v1/users/", {**body, "username": "second", "email": "s@example.com"}, format="json"), 403
    )
    assert refused["required_scope"] == "users:write"


@override_settings(API_TOKEN_CACHE_SECONDS=0.3)
def test_a_token_revoked_by_another_process_is_refused_after_the_cache_time() -> None:
    _, token = make_account()
    client = _client(token)
    assert _token_lookups(client) == 1
    # What another process's revocation looks like from here: no signal in this process.
    with connections[aliases.DEFAULT].cursor() as cursor:
        cursor.execute("DELETE FROM api_token WHERE prefix = %s", [token.prefix])
    assert _token_lookups(client) == 0  # still remembered
    time.sleep(0.35)
    assert_problem(client.get("/api/v1/users/"), 401)


def test_each_request_gets_its_own_copy_of_the_user() -> None:
    _, token = make_account()
    auth = authentication.ScopedTokenAuthentication()
    first, _ = auth.authenticate_credentials(token.key)
    second, _ = auth.authenticate_credentials(token.key)
    assert first == second and first is not second
    first.first_name = "changed by one request"
    third, _ = auth.authenticate_credentials(token.key)
    assert third.first_name != "changed by one request"


def test_the_memory_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(authentication, "MAX_ENTRIES", 3)
    auth = authentication.ScopedTokenAuthentication()
    tokens = [make_account()[1] for _ in range(5)]
    for token in tokens:
        auth.authenticate_credentials(token.key)
    assert list(authentication._checked) == [t.token.digest for t in tokens[-3:]]


def _redis_caches(location: str) -> dict:
    from django.conf import settings

    return {
        **settings.CACHES,
        "revocation": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": f"h10-{time.monotonic_ns()}",
        },
    }


def test_a_new_shared_generation_makes_the_process_look_the_token_up_again() -> None:
    import redis

    with override_settings(CACHES=_redis_caches("redis://127.0.0.1:6379/10"), API_TOKEN_REVOCATION_CACHE="revocation"):
        client = api_client()
        assert [_token_lookups(client) for _ in range(2)] == [1, 0]
        # another process's write, on a connection of its own (the key under the cache's prefix)
        other = redis.Redis.from_url("redis://127.0.0.1:6379/10")
        other.set(shared_cache.key_for("revocation", authentication.GENERATION_KEY), "changed elsewhere")
        assert [_token_lookups(client) for _ in range(2)] == [1, 0]
        authentication.bump_generation()  # what a revocation in another process does
        assert _token_lookups(client) == 1


def test_a_shared_cache_other_than_redis_carries_the_generation_too() -> None:
    """API_TOKEN_REVOCATION_CACHE naming another kind of shared cache (the table on cache_db)."""
    from django.conf import settings

    caches = {
        **settings.CACHES,
        "revocation": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "revocation-test"},
    }
    with override_settings(CACHES=caches, API_TOKEN_REVOCATION_CACHE="revocation"):
        client = api_client()
        assert [_token_lookups(client) for _ in range(2)] == [1, 0]
        authentication.bump_generation()
        assert [_token_lookups(client) for _ in range(2)] == [1, 0]


def test_an_unreadable_shared_cache_means_every_request_looks_the_token_up() -> None:
    with override_settings(CACHES=_redis_caches("redis://127.0.0.1:1/0"), API_TOKEN_REVOCATION_CACHE="revocation"):
        client = api_client()
        assert [_token_lookups(client) for _ in range(3)] == [1, 1, 1]
