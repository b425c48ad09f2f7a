"""Tokens: ``create_api_token``, and per-token throttling with ``Retry-After``."""

from __future__ import annotations

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from api import throttling
from core import aliases
from core.tokens import scopes as scope_names
from core.tokens.models import ApiToken
from core.tokens.services import key_digest
from tests.api.conftest import assert_problem
from tests.factories import api_client

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_create_api_token_issues_a_read_only_token_by_default() -> None:
    key = run("robot")
    token = ApiToken.objects.get(digest=key_digest(key))
    assert token.account.username == "robot" and not token.account.is_staff
    assert not token.account.has_usable_password()
    assert token.scopes == "read" and token.bound_user_id is None and token.expires_at is None
    second = run("robot")
    assert second != key  # a new token each time: the first key cannot be shown again
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/users/").status_code == 200
    refused = assert_problem(client.post("/api/v1/posts/", {"title": "t", "author_id": 1}, format="json"), 403)
    assert refused["required_scope"] == "posts:write"


def test_create_api_token_staff_has_every_scope() -> None:
    key = run("admin-bot", "--staff")
    token = ApiToken.objects.get(digest=key_digest(key))
    assert token.account.is_staff and token.scope_set == set(scope_names.ALL)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.post("/api/v1/users/", {"username": "a", "email": "a@example.com"}, format="json").status_code == 201


def test_throttle_is_per_token_with_retry_after() -> None:
    throttling.forget_local()
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {"token": "3/minute"}
    with override_settings(REST_FRAMEWORK=rest, API_THROTTLE_CACHE=""):
        first, second = api_client(), api_client()
        for _ in range(3):
            assert first.get("/api/v1/users/").status_code == 200
        response = first.get("/api/v1/users/")
        assert_problem(response, 429)
        assert 1 <= int(response["Retry-After"]) <= 60
        assert second.get("/api/v1/users/").status_code == 200
    throttling.forget_local()


def test_throttle_allows_a_burst_then_the_steady_pace(monkeypatch) -> None:
    """3/second: three at once, then one every third of a second; Retry-After says when."""
    throttling.forget_local()
    clock = [1000.0]
    monkeypatch.setattr(throttling.TokenRateThrottle, "timer", lambda self: clock[0])
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {"token": "3/second"}
    with override_settings(REST_FRAMEWORK=rest, API_THROTTLE_CACHE=""):
        client = api_client()
        assert [client.get("/api/v1/users/").status_code for _ in range(3)] == [200, 200, 200]
        refused = client.get("/api/v1/users/")
        assert_problem(refused, 429)
        assert refused["Retry-After"] == "1"  # a third of a second, rounded up
        clock[0] += 0.2
        assert client.get("/api/v1/users/").status_code == 429  # not yet
        clock[0] += 0.14
        assert client.get("/api/v1/users/").status_code == 200  # one more share has come back
        assert client.get("/api/v1/users/").status_code == 429
        clock[0] += 10  # idle long enough: the whole burst is back, not more
        assert [client.get("/api/v1/users/").status_code for _ in range(4)] == [200, 200, 200, 429]
    throttling.forget_local()
