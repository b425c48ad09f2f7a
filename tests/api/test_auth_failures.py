"""Failed authentication is cheap and throttled: a refused key is remembered by its digest (in
this process and in Redis), so it costs no query after the first; failures are budgeted per client
address (``API_AUTH_FAILURE_RATE``), checked before any query; a forwarded address counts only
from a trusted proxy (``FORWARDED_ALLOW_IPS``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace

import pytest
import redis
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import authentication, throttling
from core import aliases, shared_cache
from core.tokens.models import ApiToken
from core.tokens.services import generate_key, key_digest, key_prefix
from tests.api.conftest import assert_problem
from tests.factories import api_client, make_account

pytestmark = pytest.mark.django_db(databases=list(aliases.PRIMARIES))

REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
PATH = "/api/v1/users/?page_size=1"


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not redis_up(), reason=f"no Redis at {REDIS_URL}")


@contextmanager
def every_alias() -> Iterator[dict[str, CaptureQueriesContext]]:
    """The queries of every configured alias, each captured on its own."""
    with ExitStack() as stack:
        yield {alias: stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in settings.DATABASES}


def counts(captured: dict[str, CaptureQueriesContext]) -> dict[str, int]:
    return {alias: len(ctx) for alias, ctx in captured.items() if len(ctx)}


def client_with(key: str, **extra: str) -> APIClient:
    client = APIClient(**extra)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def refused_queries(client: APIClient) -> dict[str, int]:
    with every_alias() as captured:
        response = client.get(PATH)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == "Token"
    return counts(captured)


def create_token_with(key: str) -> ApiToken:
    account, _ = make_account()
    return ApiToken.objects.create(prefix=key_prefix(key), digest=key_digest(key), account=account, scopes="read")


def test_a_repeated_unknown_key_costs_no_query_after_the_first() -> None:
    client = client_with(generate_key())
    assert refused_queries(client) == {aliases.DEFAULT: 1}
    for _ in range(3):
        assert refused_queries(client) == {}


def test_a_revoked_key_is_refused_again_without_a_query_and_says_so() -> None:
    _, token = make_account()
    client = client_with(token.key)
    assert client.get(PATH).status_code == 200
    token.token.revoked_at = token.token.created_at
    token.token.save(update_fields=["revoked_at"])
    for expected in ({aliases.DEFAULT: 1}, {}):
        with every_alias() as captured:
            body = assert_problem(client.get(PATH), 401)
        assert body["detail"] == "This token has been revoked." and counts(captured) == expected


@override_settings(API_REFUSED_TOKEN_SECONDS=0)
def test_zero_remembers_no_refused_key() -> None:
    client = client_with(generate_key())
    assert [refused_queries(client) for _ in range(2)] == [{aliases.DEFAULT: 1}] * 2


def test_a_token_created_after_its_key_was_refused_works() -> None:
    key = generate_key()
    client = client_with(key)
    refused_queries(client)
    assert refused_queries(client) == {}
    create_token_with(key)
    assert client.get(PATH).status_code == 200


@override_settings(API_REFUSED_TOKEN_SECONDS=0.2)
def test_a_refused_key_is_looked_up_again_after_its_time() -> None:
    """Without a shared cache this bounds how long a token saved by another process (no signal
    here) is still refused."""
    key = generate_key()
    client = client_with(key)
    refused_queries(client)
    account, _ = make_account()
    # another process's insert: no signal in this process
    with connections[aliases.DEFAULT].cursor() as cursor:
        cursor.execute(
            "INSERT INTO api_token (prefix, digest, account_id, scopes, created_at) VALUES (%s, %s, %s, %s, %s)",
            [key_prefix(key), key_digest(key), account.pk, "read", account.date_joined],
        )
    assert_problem(client.get(PATH), 401)  # still remembered
    time.sleep(0.25)
    assert client.get(PATH).status_code == 200


def test_the_memory_is_bounded_least_recently_seen_out() -> None:
    keys = [generate_key() for _ in range(4)]
    with override_settings(API_REFUSED_TOKEN_ENTRIES=3):
        for key in keys[:3]:
            refused_queries(client_with(key))
        refused_queries(client_with(keys[0]))  # seen again: now the most recent
        refused_queries(client_with(keys[3]))  # keys[1] is dropped
        assert list(authentication._refused) == [key_digest(k) for k in (keys[2], keys[0], keys[3])]
        assert refused_queries(client_with(keys[1])) == {aliases.DEFAULT: 1}


def test_only_digests_are_kept() -> None:
    key = generate_key()
    refused_queries(client_with(key))
    assert key not in repr(dict(authentication._refused)) and key_digest(key) in authentication._refused


# ---- shared through Redis ----------------------------------------------------------------------


def _two_clients_of_one_redis() -> dict:
    """Two cache aliases on the same Redis database through two URLs, so two redis-py clients
    (core.shared_cache keeps one per URL): what two processes see."""
    prefix = f"refused-{time.monotonic_ns()}"
    other = REDIS_URL.replace("127.0.0.1", "localhost")
    assert other != REDIS_URL
    return {
        **settings.CACHES,
        "one": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix},
        "two": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": other, "KEY_PREFIX": prefix},
    }


@needs_redis
def test_a_refused_key_is_shared_through_redis_across_two_clients() -> None:
    key = generate_key()
    client = client_with(key)
    conf = _two_clients_of_one_redis()
    with override_settings(CACHES=conf, API_TOKEN_REVOCATION_CACHE="one"):
        assert refused_queries(client) == {aliases.DEFAULT: 1}
    authentication.forget_all()  # another process: nothing remembered in it
    with override_settings(CACHES=conf, API_TOKEN_REVOCATION_CACHE="two"):
        assert shared_cache.client_for("two") is not shared_cache.client_for("one")
        assert refused_queries(client) == {}
        # what Redis holds names the digest, never the key
        raw = shared_cache.client_for("two")
        stored = [k.decode() for k in raw.scan_iter(match=f"{conf['two']['KEY_PREFIX']}:*")]
        assert stored and all(key not in k for k in stored)
        assert any(key_digest(key) in k for k in stored)
        assert all(key not in raw.get(k).decode() for k in stored)


@needs_redis
def test_a_token_created_after_its_key_was_refused_works_in_every_process(
    django_capture_on_commit_callbacks,
) -> None:
    key = generate_key()
    client = client_with(key)
    conf = _two_clients_of_one_redis()
    with override_settings(CACHES=conf, API_TOKEN_REVOCATION_CACHE="one"):
        refused_queries(client)
        with django_capture_on_commit_callbacks(execute=True):
            create_token_with(key)  # after the commit: a new generation, the shared entry deleted
    authentication.forget_all()  # another process, which remembered the refusal until now
    with override_settings(CACHES=conf, API_TOKEN_REVOCATION_CACHE="two"):
        assert client.get(PATH).status_code == 200


@needs_redis
def test_a_refusal_stored_under_an_older_generation_does_not_count() -> None:
    """A token created by another process (a new generation; no signal here) is let in at once,
    however recently its key was refused."""
    key = generate_key()
    client = client_with(key)
    conf = _two_clients_of_one_redis()
    with override_settings(CACHES=conf, API_TOKEN_REVOCATION_CACHE="one"):
        refused_queries(client)
        account, _ = make_account()
        with connections[aliases.DEFAULT].cursor() as cursor:
            cursor.execute(
                "INSERT INTO api_token (prefix, digest, account_id, scopes, created_at) VALUES (%s, %s, %s, %s, %s)",
                [key_prefix(key), key_digest(key), account.pk, "read", account.date_joined],
            )
        assert_problem(client.get(PATH), 401)  # same generation: still refused, no query
        authentication.bump_generation()  # what the other process's signal does after its commit
        assert client.get(PATH).status_code == 200


# ---- the failure budget per client address -------------------------------------------------------


@override_settings(API_AUTH_FAILURE_RATE="3/minute", API_THROTTLE_CACHE="")
def test_failures_beyond_the_budget_are_a_429_before_any_query() -> None:
    remembered = api_client()
    assert remembered.get(PATH).status_code == 200
    for _ in range(3):
        refused_queries(client_with(generate_key()))
    with every_alias() as captured:
        response = client_with(generate_key()).get(PATH)  # a key never seen: not even looked up
    assert_problem(response, 429)
    assert counts(captured) == {}
    assert 1 <= int(response["Retry-After"]) <= 20
    assert response["RateLimit-Policy"] == '"auth-failure";q=3;w=60'
    assert response["RateLimit"].startswith('"auth-failure";r=0;t=')
    # a remembered refused key and a malformed header are charged too
    assert_problem(client_with(generate_key()).get(PATH), 429)
    assert_problem(client_with("two words").get(PATH), 429)
    # a valid token this process remembers is not a failure
    assert remembered.get(PATH).status_code == 200


@override_settings(API_AUTH_FAILURE_RATE="2/minute", API_THROTTLE_CACHE="")
def test_each_401_says_what_is_left_of_the_failure_budget() -> None:
    first = client_with(generate_key()).get(PATH)
    second = client_with(generate_key()).get(PATH)
    assert first["RateLimit"].startswith('"auth-failure";r=1;t=')
    assert second["RateLimit"].startswith('"auth-failure";r=0;t=')
    assert 0 < int(second["RateLimit"].rsplit("t=", 1)[1]) <= 60


@override_settings(API_AUTH_FAILURE_RATE="2/minute", API_THROTTLE_CACHE="", FORWARDED_ALLOW_IPS=["127.0.0.1"])
def test_a_trusted_proxy_forwards_each_client_its_own_budget() -> None:
    for client_ip in ("198.51.100.1", "198.51.100.2"):
        answers = [client_with(generate_key()).get(PATH, HTTP_X_FORWARDED_FOR=client_ip).status_code for _ in range(3)]
        assert answers == [401, 401, 429], client_ip


@override_settings(API_AUTH_FAILURE_RATE="2/minute", API_THROTTLE_CACHE="", FORWARDED_ALLOW_IPS=["127.0.0.1"])
def test_a_forwarded_address_from_an_untrusted_peer_is_not_believed() -> None:
    answers = [
        client_with(generate_key(), REMOTE_ADDR="203.0.113.9").get(PATH, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        for n in range(3)
    ]
    assert [a.status_code for a in answers] == [401, 401, 429]


@override_settings(FORWARDED_ALLOW_IPS=["127.0.0.1", "10.0.0.0/8"])
def test_client_address() -> None:
    def address(peer: str, forwarded: str | None = None) -> str:
        meta = {"REMOTE_ADDR": peer}
        if forwarded is not None:
            meta["HTTP_X_FORWARDED_FOR"] = forwarded
        return throttling.client_address(SimpleNamespace(META=meta))

    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"  # not a proxy
    assert address("127.0.0.1", "198.51.100.1") == "198.51.100.1"
    assert address("10.1.2.3", "1.1.1.1, 198.51.100.1") == "198.51.100.1"  # the nearest proxy's entry
    assert address("127.0.0.1", "not an address") == "127.0.0.1"
    assert address("", "198.51.100.1") == "198.51.100.1"  # a UNIX-socket peer is the proxy
    assert address("2001:db8::1") == address("2001:db8::ffff") == "2001:db8::/64"
    with override_settings(FORWARDED_ALLOW_IPS=["*"]):
        assert address("203.0.113.9", "198.51.100.1") == "198.51.100.1"


@needs_redis
def test_the_failure_budget_is_shared_through_redis() -> None:
    conf = _two_clients_of_one_redis()
    with override_settings(CACHES=conf, API_THROTTLE_CACHE="one", API_AUTH_FAILURE_RATE="2/minute"):
        assert [client_with(generate_key()).get(PATH).status_code for _ in range(2)] == [401, 401]
    throttling.forget_local()
    with override_settings(CACHES=conf, API_THROTTLE_CACHE="two", API_AUTH_FAILURE_RATE="2/minute"):
        with every_alias() as captured:
            response = client_with(generate_key()).get(PATH)
        assert_problem(response, 429)
        assert counts(captured) == {}
        assert 1 <= int(response["Retry-After"]) <= 30
        assert response["RateLimit"].startswith('"auth-failure";r=0;t=')
