"""JSON bodies are held to ``JSON_MAX_DEPTH`` levels by the parser, on every write, before any view."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from core import aliases
from core.analytics.models import AnalyticsEvent
from tests.api.conftest import assert_problem
from tests.api.write_operations import concrete, fill, objects, valid_body, write_operations

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY])

DEPTHS = [1, 2, 3, 5, 8, 16, 31, 32, 33, 64, 100, 500, *range(926, 944), 1000, 1024, 1025, 2000, 5000, 10000]
SHAPES = ("list", "object")
PLACES = ("root", "data", "batch item")
_keys = itertools.count()


def nest(depth: int, shape: str) -> bytes:
    """Arrays or objects ``depth`` levels deep (``[]`` and ``{}`` are one level)."""
    if shape == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


def placed(body: dict[str, Any], depth: int, shape: str, place: str) -> tuple[bytes, int]:
    """A body with the nesting at ``place``, and the body's whole depth."""
    inner = nest(depth, shape)
    if place == "root":
        return inner, depth
    if place == "data":
        return json.dumps(body).encode()[:-1] + b', "data": ' + inner + b"}", max(depth_of(body), depth + 1)
    return b'{"events": [{"event_type": "v", "data": ' + inner + b"}]}", depth + 3


@override_settings(LEGACY_ALLOW_WRITES=True)
@pytest.mark.parametrize(("method", "path"), write_operations())
def test_every_write_refuses_deep_bodies_and_never_fails(staff_client, method, path) -> None:
    limit = settings.JSON_MAX_DEPTH
    ids = objects()
    url = concrete(path, ids)
    body = fill(valid_body(path, 1), ids)
    for depth, shape, place in itertools.product(DEPTHS, SHAPES, PLACES):
        raw, whole = placed(body, depth, shape, place)
        headers = {"HTTP_IDEMPOTENCY_KEY": f"depth-{next(_keys)}"} if method == "POST" else {}
        response = staff_client.generic(method, url, raw, content_type="application/json", **headers)
        case = (method, path, depth, shape, place, response.status_code, response.content[:300])
        assert response.status_code < 500, case
        codes = [e["code"] for e in response.json().get("errors", [])] if response.status_code >= 400 else []
        if whole > limit:
            assert response.status_code == 400 and codes == ["too_deep"], case
        else:
            assert "too_deep" not in codes, case


# The parser's limit is what these test: an event's own bound on its data's depth
# (EVENT_DATA_MAX_DEPTH, tests/api/test_limits.py) is lifted past it.
@override_settings(EVENT_DATA_MAX_DEPTH=10_000)
@pytest.mark.parametrize("url", ["/api/v1/analytics/events/", "/api/v1/analytics/events/batch/"])
def test_every_depth_up_to_past_the_recursion_limit_is_answered(staff_client, url) -> None:
    """Each depth from 1 to 1,100 in an event's ``data``: where a decoded body would meet Python's
    recursion limit (encoding it for the database or the answer) depends on the depth of the stack
    the request runs on, which differs between a server and a test, so no depth is skipped."""
    limit = settings.JSON_MAX_DEPTH
    head, tail = (
        (b'{"event_type": "v", "data": {"d": ', b"}}")
        if url.endswith("events/")
        else (
            b'{"events": [{"event_type": "v", "data": {"d": ',
            b"}}]}",
        )
    )
    outer = 2 if url.endswith("events/") else 4
    for depth in range(1, 1101):
        response = staff_client.generic("POST", url, head + nest(depth, "list") + tail, content_type="application/json")
        if depth + outer > limit:
            assert response.status_code == 400, (depth, response.content[:300])
            assert response.json()["errors"][0]["code"] == "too_deep"
        else:
            assert response.status_code == 201, (depth, response.content[:300])


@override_settings(EVENT_DATA_MAX_DEPTH=10_000)
def test_the_default_limit_is_documented_and_answered(staff_client) -> None:
    assert settings.JSON_MAX_DEPTH == 32
    body = b'{"event_type": "v", "data": ' + nest(31, "object") + b"}"
    assert (
        staff_client.generic("POST", "/api/v1/analytics/events/", body, content_type="application/json").status_code
        == 201
    )
    body = b'{"event_type": "v", "data": ' + nest(32, "object") + b"}"
    answer = assert_problem(
        staff_client.generic("POST", "/api/v1/analytics/events/", body, content_type="application/json"), 400
    )
    assert answer["errors"] == [
        {
            "field": None,
            "code": "too_deep",
            "message": "JSON parse error - arrays and objects are nested more than 32 levels deep (JSON_MAX_DEPTH).",
        }
    ]


@override_settings(JSON_MAX_DEPTH=200, EVENT_DATA_MAX_DEPTH=10_000)
@pytest.mark.parametrize("shape", SHAPES)
def test_the_largest_limit_is_stored_answered_replayed_and_read_back(staff_client, shape) -> None:
    """At the largest JSON_MAX_DEPTH, the deepest accepted body goes through the whole path: the
    Idempotency-Key fingerprint and stored answer, the answer's encoding, the reads of the list and
    of each event."""
    events = "/api/v1/analytics/events/"
    for url, wrap in (
        (events, lambda depth: b'{"event_type": "deep", "data": {"d": ' + nest(depth, shape) + b"}}"),
        (
            events + "batch/",
            lambda depth: b'{"events": [{"event_type": "deep", "data": {"d": ' + nest(depth, shape) + b"}}]}",
        ),
    ):
        fits = 198 if url == events else 196  # the body is then 200 levels deep
        for _ in range(2):  # the second is the stored answer, replayed
            response = staff_client.generic(
                "POST", url, wrap(fits), content_type="application/json", HTTP_IDEMPOTENCY_KEY=f"deep-{shape}-{url}"
            )
            assert response.status_code == 201, response.content[:300]
        assert response["Idempotent-Replayed"] == "true"
        answer = assert_problem(staff_client.generic("POST", url, wrap(fits + 1), content_type="application/json"), 400)
        assert answer["errors"][0]["code"] == "too_deep"
    assert AnalyticsEvent.objects.count() == 2
    listed = staff_client.get(events, {"event_type": "deep"})
    assert listed.status_code == 200 and len(listed.json()["results"]) == 2
    for event in AnalyticsEvent.objects.all():
        read = staff_client.get(f"{events}{event.pk}/")
        assert read.status_code == 200 and depth_of(read.json()) == depth_of(event.data) + 1


def test_the_walk_agrees_with_a_recursive_depth() -> None:
    from api.parsers import nesting_exceeds  # imported late: api.parsers needs DRF's views loaded first

    rng = random.Random(7)

    def build(levels: int) -> Any:
        if levels == 0:
            return rng.choice([1, "s", None, 2.5])
        kind = rng.choice(["list", "dict"])
        children = [build(rng.randrange(levels)) for _ in range(rng.randrange(1, 4))]
        children[0] = build(levels - 1)  # one branch reaches the full depth
        rng.shuffle(children)
        return children if kind == "list" else {f"k{i}": c for i, c in enumerate(children)}

    for _ in range(300):
        value = build(rng.randrange(0, 12))
        depth = depth_of(value)
        assert not nesting_exceeds(value, depth)
        assert nesting_exceeds(value, depth - 1) == (depth >= 1)


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        # An integer beyond 64 bits stays exact, so the field names it out of range.
        (b'{"event_type": "v", "user_id": 18446744073709551616}', "user_id", "max_value"),
        # A lone surrogate escape is read, and the field that cannot store it says so.
        (b'{"event_type": "v", "data": {"k": "\\ud800"}}', "data", "surrogate_characters_not_allowed"),
        (b'{"event_type": "v", "data": {"k": NaN}}', None, "parse_error"),
        (b'{"event_type": "v", "data": {"k": "\xff"}}', None, "parse_error"),
        (b'{"event_type": "v", "data": {"k": 1' + b"0" * 5000 + b"}}", None, "parse_error"),
    ],
)
def test_the_decoder_keeps_its_answers(staff_client, body, field, code) -> None:
    answer = assert_problem(
        staff_client.generic("POST", "/api/v1/analytics/events/", body, content_type="application/json"), 400
    )
    assert (answer["errors"][0]["field"], answer["errors"][0]["code"]) == (field, code), answer


def test_a_repeated_key_takes_its_last_value(staff_client) -> None:
    body = b'{"event_type": "first", "event_type": "last"}'
    response = staff_client.generic("POST", "/api/v1/analytics/events/", body, content_type="application/json")
    assert response.status_code == 201 and response.json()["event_type"] == "last"
