"""``X-Request-ID`` and ``Server-Timing`` on every response."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from api.middleware import server_timing
from core import aliases
from tests.factories import make_post

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
ENTRY = re.compile(r"^(?P<alias>[A-Za-z0-9_]+);dur=(?P<ms>[0-9]+\.[0-9])$")


def test_middleware_order() -> None:
    order = settings.MIDDLEWARE
    # The request's frame (request id, routing state, Server-Timing, logs) wraps everything,
    # CORS preflights and early 411/413 answers included.
    assert order[0] == "api.middleware.RequestMiddleware"
    # No session, authentication or message middleware for the API: the admin's own wrapper.
    assert not [name for name in order if name.startswith("django.contrib.")]
    assert order[-2] == "api.middleware.AdminSessionMiddleware"
    # Innermost: process_view sees the resolved view after every other middleware's.
    assert order[-1] == "api.middleware.RefusedKeyMiddleware"


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.com"])
def test_cors_preflight_has_a_request_id_and_exposes_the_headers() -> None:
    response = APIClient().options(
        "/api/v1/users/",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_X_REQUEST_ID="preflight-1",
    )
    assert response["X-Request-ID"] == "preflight-1"
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_a_valid_request_id_is_echoed(client_) -> None:
    response = client_.get("/api/v1/users/", HTTP_X_REQUEST_ID="abc-123_x.y:z")
    assert response["X-Request-ID"] == "abc-123_x.y:z"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "<script>", "ünï"])
def test_an_invalid_request_id_is_replaced(client_, bad: str) -> None:
    response = client_.get("/api/v1/users/", HTTP_X_REQUEST_ID=bad)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_every_response_has_a_request_id_even_errors_and_health() -> None:
    ids = set()
    for url in ("/api/v1/users/", "/api/v1/nope/", "/health", "/api/schema/"):
        response = APIClient().get(url)
        assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"]), url
        ids.add(response["X-Request-ID"])
    assert len(ids) == 4


def test_server_timing_names_each_alias_touched(client_) -> None:
    make_post()
    response = client_.get("/api/v1/posts/")
    entries = [ENTRY.match(part.strip()) for part in response["Server-Timing"].split(",")]
    assert all(entries), response["Server-Timing"]
    assert [m["alias"] for m in entries] == [aliases.DEFAULT, aliases.USERS]
    assert all(float(m["ms"]) >= 0 for m in entries)


def test_server_timing_absent_when_no_database_is_touched() -> None:
    assert "Server-Timing" not in APIClient().get("/health")


def test_server_timing_format() -> None:
    assert server_timing({"users_db": [2, 0.0018], "default_replica_1": [1, 0.0009]}) == (
        "users_db;dur=1.8, default_replica_1;dur=0.9"
    )


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.com"])
def test_cors_exposes_request_id_and_server_timing(client_) -> None:
    response = client_.get("/api/v1/users/", HTTP_ORIGIN="https://app.example.com")
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"x-request-id", "server-timing"} <= exposed


@override_settings(CORS_ALLOWED_ORIGINS=["https://app.example.com"])
def test_cors_preflight_allows_the_headers_clients_send() -> None:
    response = APIClient().options(
        "/api/v1/posts/",
        HTTP_ORIGIN="https://app.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, idempotency-key, x-request-id",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "x-request-id"} <= allowed


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_without_the_trailing_slash_is_a_308(staff_client, method) -> None:
    user = make_post().author_id
    for path in ("/api/v1/users", f"/api/v1/users/{user}"):
        response = getattr(staff_client, method)(f"{path}?x=1", {"username": "a"}, format="json")
        assert response.status_code == 308, (path, response.status_code)
        assert response["Location"] == f"{path}/?x=1"


def test_a_get_without_the_trailing_slash_keeps_the_301_and_unknown_paths_404(staff_client) -> None:
    response = staff_client.get("/api/v1/users")
    assert response.status_code == 301 and response["Location"] == "/api/v1/users/"
    assert staff_client.post("/api/v1/nothing-here", {}, format="json").status_code == 404
