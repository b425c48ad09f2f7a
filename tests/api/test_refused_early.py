"""A key this process remembers as refused is answered by ``api.middleware.RefusedKeyMiddleware``
before DRF, with exactly DRF's answer (status, Problem Details body, ``WWW-Authenticate``,
``Allow``, ``Retry-After``, the ``RateLimit`` fields of the failure budget), on every operation of
the API; the failure budget is charged the same; anything DRF would answer otherwise goes on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.db import connections
from django.test import RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import resolve
from rest_framework.test import APIClient

from api import authentication
from api.middleware import RefusedKeyMiddleware
from core import aliases
from core.tokens.services import generate_key

pytestmark = pytest.mark.django_db(databases=list(aliases.PRIMARIES))

ROOT = Path(__file__).resolve().parents[2]
EARLY = "api.middleware.RefusedKeyMiddleware"
#: what differs between two answers whatever answered them
PER_ANSWER = {"X-Request-ID", "RateLimit", "Server-Timing"}


def operations() -> list[tuple[str, str]]:
    """Every (path, method) of the API's schema, path parameters filled in."""
    schema = yaml.safe_load((ROOT / "openapi" / "schema.yaml").read_text())
    found = []
    for path, item in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        found.extend((concrete, method) for method in item if method in ("get", "post", "put", "patch", "delete"))
    return found


def without_early() -> override_settings:
    return override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != EARLY])


def refused_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def comparable(response) -> tuple[int, bytes, dict[str, str]]:
    headers = {name: value for name, value in response.items() if name not in PER_ANSWER}
    return response.status_code, response.content, headers


@pytest.mark.parametrize(("path", "method"), operations())
@override_settings(API_AUTH_FAILURE_RATE="1000/minute")
def test_the_early_answer_is_drfs(path: str, method: str) -> None:
    key = generate_key()
    client = refused_client(key)
    with without_early():
        first = getattr(client, method)(path)  # looked up, remembered as refused
        drf = getattr(client, method)(path)  # DRF's answer to a remembered refused key
    if drf.status_code != 401:  # an operation without the token authentication
        assert not authentication._refused
        return
    # the middleware answers (before any view), and with the same answer
    request = getattr(RequestFactory(), method)(path, HTTP_AUTHORIZATION=f"Token {key}")
    match = resolve(request.path_info)
    assert RefusedKeyMiddleware(lambda r: None).process_view(request, match.func, match.args, match.kwargs)
    with CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
        early = getattr(client, method)(path)
    assert len(queries) == 0
    assert comparable(early) == comparable(drf)
    assert early["WWW-Authenticate"] == "Token" and early["Allow"] and first.status_code == 401
    # the failure budget counted each early answer (the direct call's and the client's)
    left = [int(re.search(r";r=(\d+);", a["RateLimit"]).group(1)) for a in (drf, early)]
    assert left == [left[0], left[0] - 2]


@override_settings(API_AUTH_FAILURE_RATE="3/minute")
def test_the_early_429_is_drfs_and_the_budget_is_counted_once() -> None:
    path = "/api/v1/users/?page_size=1"
    with without_early():
        client = refused_client(generate_key())
        drf = [client.get(path) for _ in range(4)]
    authentication.forget_all()  # the budgets too: the same address starts again
    client = refused_client(generate_key())
    early = [client.get(path) for _ in range(4)]  # the first one DRF's (not remembered yet)
    assert [a.status_code for a in drf] == [a.status_code for a in early] == [401, 401, 401, 429]
    for ours, theirs in zip(early, drf, strict=True):
        assert ours["RateLimit"].split(";t=")[0] == theirs["RateLimit"].split(";t=")[0]
    # the 429 names whole seconds to wait (Retry-After, detail), which may round apart between runs
    seconds = re.compile(rb"\d+ seconds?")
    status, body, headers = comparable(early[-1])
    assert (status, seconds.sub(b"N", body)) == (429, seconds.sub(b"N", drf[-1].content))
    assert {**headers, "Retry-After": "N"} == {**comparable(drf[-1])[2], "Retry-After": "N"}
    assert "WWW-Authenticate" not in early[-1]


def test_a_key_not_remembered_or_another_negotiation_goes_to_drf() -> None:
    path = "/api/v1/users/?page_size=1"
    key = generate_key()
    request = RequestFactory().get(path, HTTP_AUTHORIZATION=f"Token {key}")
    match = resolve(request.path_info)
    middleware = RefusedKeyMiddleware(lambda r: None)
    assert middleware.process_view(request, match.func, match.args, match.kwargs) is None  # not remembered
    assert refused_client(key).get(path).status_code == 401  # now remembered
    assert middleware.process_view(request, match.func, match.args, match.kwargs) is not None
    for extra in ({"HTTP_ACCEPT": "text/html"}, {"HTTP_ACCEPT": "application/json; indent=4"}):
        other = RequestFactory().get(path, HTTP_AUTHORIZATION=f"Token {key}", **extra)
        assert middleware.process_view(other, match.func, match.args, match.kwargs) is None
    with_format = RequestFactory().get(path + "&format=json", HTTP_AUTHORIZATION=f"Token {key}")
    assert middleware.process_view(with_format, match.func, match.args, match.kwargs) is None
    health = RequestFactory().get("/health", HTTP_AUTHORIZATION=f"Token {key}")
    health_match = resolve("/health")
    assert middleware.process_view(health, health_match.func, health_match.args, health_match.kwargs) is None
