"""Every error is Problem Details: size limits, unknown URLs, crashes, databases that are down."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import RequestFactory, override_settings

from api.views import errors
from core import aliases
from tests.api.conftest import PROBLEM, assert_problem
from tests.factories import make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2_000)
def test_body_over_the_limit_is_413(client_) -> None:
    body = b'{"title": "' + b"x" * 3_000 + b'", "author_id": 1}'
    response = client_.generic("POST", "/api/v1/posts/", body, content_type="application/json")
    assert_problem(response, 413)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2_000)
def test_body_longer_than_announced_is_still_cut_at_the_limit(client_) -> None:
    body = b'{"title": "' + b"x" * 3_000 + b'", "author_id": 1}'
    response = client_.generic("POST", "/api/v1/posts/", body, content_type="application/json", CONTENT_LENGTH="100")
    assert response.status_code in (400, 413)  # a lie about the length never reaches the database
    assert response["Content-Type"].startswith(PROBLEM)


def test_unknown_api_url_is_problem_404(client_) -> None:
    response = client_.get("/api/v1/no-such-thing/")
    assert_problem(response, 404)


@pytest.mark.parametrize("path", ["/no-such-page/", "/health/", "/api-auth/login/", "/static/nothing.js"])
def test_unknown_url_outside_the_api_is_problem_404_too(client_, path) -> None:
    assert_problem(client_.get(path), 404)


def test_405_outside_the_api_is_problem_json(client_) -> None:
    response = client_.post("/health", {}, format="json")
    assert_problem(response, 405)
    assert "GET" in response["Allow"]


def test_the_admin_keeps_its_html_404(client_) -> None:
    response = client_.get("/admin/no-such-page/")
    assert response.status_code in (302, 404)
    assert not response["Content-Type"].startswith(PROBLEM)


def test_django_500_and_400_views_answer_problems_under_api() -> None:
    request = RequestFactory().get("/api/v1/users/")
    for response, status in (
        (errors.server_error(request), 500),
        (errors.bad_request(request, Exception()), 400),
        (errors.permission_denied(request, Exception()), 403),
    ):
        assert response.status_code == status
        assert response["Content-Type"] == PROBLEM


def test_method_not_allowed_is_problem_405(client_) -> None:
    assert_problem(client_.delete("/api/v1/posts/"), 405)


def test_not_acceptable_is_problem_406(client_) -> None:
    assert_problem(client_.get("/api/v1/users/", HTTP_ACCEPT="text/csv"), 406)


@pytest.fixture
def users_db_down():  # type: ignore[no-untyped-def]
    """users_db pointing at a server that refuses connections (a real failed connect, not a mock)."""
    connection = connections[aliases.USERS]
    saved = dict(connection.settings_dict)
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-dir/users.sqlite3"
    else:
        connection.settings_dict.update(HOST="127.0.0.1", PORT="1")
        options = dict(connection.settings_dict.get("OPTIONS") or {})
        if isinstance(options.get("pool"), dict):
            options["pool"] = {**options["pool"], "timeout": 1.0}  # fail fast: the port refuses anyway
        connection.settings_dict["OPTIONS"] = options
    yield
    connection.close()
    if hasattr(connection, "close_pool"):
        connection.close_pool()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS], transaction=True)
def test_a_database_that_is_down_is_503_naming_the_alias(users_db_down) -> None:
    from tests.factories import api_client

    client = api_client()
    response = client.get("/api/v1/users/")
    body = assert_problem(response, 503)
    assert body["alias"] == aliases.USERS
    assert aliases.USERS in body["detail"]
    assert "Traceback" not in response.content.decode()
    response = client.post("/api/v1/posts/", {"title": "x", "author_id": 1}, format="json")
    assert assert_problem(response, 503)["alias"] == aliases.USERS


def test_out_of_range_ids_everywhere_are_4xx(client_) -> None:
    user = make_user()
    for url in (f"/api/v1/users/{2**63}/", f"/api/v1/posts/{10**30}/", "/api/v1/analytics/events/-1/"):
        response = client_.get(url)
        assert response.status_code == 404, url
    assert client_.get(f"/api/v1/users/{user.pk}/").status_code == 200
