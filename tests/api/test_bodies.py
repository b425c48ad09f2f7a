"""Request bodies: the batch endpoint's own size cap, and chunked bodies (no Content-Length)."""

from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.test import override_settings

from core import aliases
from core.analytics.models import AnalyticsEvent
from tests.api.conftest import assert_problem
from tests.factories import make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])
BATCH = "/api/v1/analytics/events/batch/"


def _batch_body(size: int) -> bytes:
    """A valid batch body of exactly ``size`` bytes."""
    head, tail = b'{"events": [{"event_type": "v", "data": {"p": "', b'"}}]}'
    return head + b"s" * (size - len(head) - len(tail)) + tail


@override_settings(MAX_BODY_BYTES=200, BATCH_MAX_BODY_BYTES=400, DATA_UPLOAD_MAX_MEMORY_SIZE=400)
def test_each_cap_on_both_sides(client_) -> None:
    post = client_.generic
    # The batch: its own cap, above MAX_BODY_BYTES.
    assert post("POST", BATCH, _batch_body(150), content_type="application/json").status_code == 201
    assert post("POST", BATCH, _batch_body(300), content_type="application/json").status_code == 201
    assert_problem(post("POST", BATCH, _batch_body(401), content_type="application/json"), 413)
    # Every other endpoint keeps MAX_BODY_BYTES.
    author = make_user().pk
    small = json.dumps({"title": "t", "content": "c" * 100, "author_id": author}).encode()
    big = json.dumps({"title": "t", "content": "c" * 250, "author_id": author}).encode()
    assert len(small) <= 200 < len(big) <= 400
    assert client_.generic("POST", "/api/v1/posts/", small, content_type="application/json").status_code == 201
    assert_problem(client_.generic("POST", "/api/v1/posts/", big, content_type="application/json"), 413)
    event = json.dumps({"event_type": "v", "session_id": "s" * 95, "data": {"k": "x" * 120}}).encode()
    assert 200 < len(event) <= 400
    assert_problem(client_.generic("POST", "/api/v1/analytics/events/", event, content_type="application/json"), 413)
    assert AnalyticsEvent.objects.count() == 2


def test_a_full_batch_of_large_events_fits_the_default_cap(client_) -> None:
    event = {
        "event_type": "page_view",
        "user_id": 12345,
        "session_id": "s" * 36,
        "timestamp": "2026-11-25T10:00:00Z",
        "data": {"path": "/p/" + "x" * 400},
    }
    body = json.dumps({"events": [event] * settings.EVENT_BATCH_MAX_EVENTS}).encode()
    assert 5 * 1024 * 1024 < len(body) < 32 * 1024 * 1024  # above MAX_BODY_BYTES' default
    response = client_.generic("POST", BATCH, body, content_type="application/json")
    assert response.status_code == 201, response.content[:300]
    assert AnalyticsEvent.objects.count() == settings.EVENT_BATCH_MAX_EVENTS


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_chunked_body_without_content_length_is_411(client_, method) -> None:
    body = json.dumps({"events": [{"event_type": "v"}]}).encode()
    # The WSGI environ gunicorn builds for `Transfer-Encoding: chunked`: no CONTENT_LENGTH, the
    # body on wsgi.input, wsgi.input_terminated set.
    response = client_.generic(
        method,
        BATCH,
        body,
        content_type="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input_terminated": True},
    )
    body_411 = assert_problem(response, 411)
    assert "Content-Length" in body_411["detail"]
    assert AnalyticsEvent.objects.count() == 0
    # The same body with its length is accepted.
    if method == "POST":
        assert client_.generic("POST", BATCH, body, content_type="application/json").status_code == 201


@override_settings(MAX_BODY_BYTES=200, BATCH_MAX_BODY_BYTES=400, DATA_UPLOAD_MAX_MEMORY_SIZE=400)
def test_an_announced_length_over_the_cap_is_413_before_the_body_is_read(client_) -> None:
    small = _batch_body(150)
    for url, announced in (("/api/v1/posts/", "201"), (BATCH, "401")):
        response = client_.generic("POST", url, small, content_type="application/json", CONTENT_LENGTH=announced)
        assert "at most" in assert_problem(response, 413)["detail"]
