"""Every answer a throttle counted says what is left of the budget: ``RateLimit-Policy`` and
``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10, structured fields), a 429 also
``Retry-After``; browsers on another origin may read them; the schema documents them."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import redis
import yaml
from django.conf import settings
from django.test import override_settings

from core import aliases
from tests.api.conftest import assert_problem
from tests.factories import api_client

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])

REDIS_URL = os.environ.get("SWITCHYARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://app.example.com"
FIELD = re.compile(r'^"token";r=(\d+);t=(\d+)$')


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _rest(rate: str) -> dict:
    return {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": rate}}


def _walk_the_budget() -> None:
    client = api_client()
    seen = []
    for _ in range(5):
        response = client.get("/api/v1/users/")
        assert response.status_code == 200
        assert response["RateLimit-Policy"] == '"token";q=5;w=60'
        remaining, reset = map(int, FIELD.match(response["RateLimit"]).groups())
        seen.append((remaining, reset))
    assert [r for r, _ in seen] == [4, 3, 2, 1, 0]
    # t: whole seconds until the budget is whole again, one request's share (12 s) per request
    # spent, less the time the requests took (rounded up)
    for (_, reset), spent in zip(seen, (12, 24, 36, 48, 60), strict=True):
        assert spent - 1 <= reset <= spent
    refused = client.get("/api/v1/users/")
    assert_problem(refused, 429)
    assert refused["RateLimit-Policy"] == '"token";q=5;w=60'
    remaining, reset = map(int, FIELD.match(refused["RateLimit"]).groups())
    assert remaining == 0 and 59 <= reset <= 60
    assert 11 <= int(refused["Retry-After"]) <= 12


def test_the_headers_count_down_in_process() -> None:
    with override_settings(REST_FRAMEWORK=_rest("5/minute"), API_THROTTLE_CACHE=""):
        _walk_the_budget()


@pytest.mark.skipif(not redis_up(), reason=f"no Redis at {REDIS_URL}")
def test_the_headers_count_down_on_redis() -> None:
    caches = {
        **settings.CACHES,
        "budgets": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"ratelimit-{time.monotonic_ns()}",
        },
    }
    with override_settings(CACHES=caches, REST_FRAMEWORK=_rest("5/minute"), API_THROTTLE_CACHE="budgets"):
        _walk_the_budget()


def test_an_answer_no_throttle_counted_has_none() -> None:
    assert "RateLimit" not in api_client().get("/health")
    # no token: refused by the permission before any throttle (no failure either: nothing was tried)
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/users/")
    assert response.status_code == 401 and "RateLimit" not in response


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_browsers_on_another_origin_may_read_them() -> None:
    response = api_client().get("/api/v1/users/", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200 and "RateLimit" in response
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"ratelimit", "ratelimit-policy", "retry-after"} <= exposed


def test_the_schema_documents_them_on_every_throttled_operation() -> None:
    schema = yaml.safe_load((ROOT / "openapi" / "schema.yaml").read_text())
    throttled = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "429" not in responses:
                continue
            throttled += 1
            for status, response in responses.items():
                headers = response.get("headers", {})
                assert {"RateLimit", "RateLimit-Policy"} <= set(headers), (method, path, status)
            too_many = responses["429"]["headers"]
            assert too_many["RateLimit"]["required"] and too_many["Retry-After"]["required"], (method, path)
    assert throttled > 20
