"""Size bounds of what clients send (docs/api.md, "Limits"): every text field, event data (keys,
depth, bytes as written back), batches; each read from its setting when used, so a configured
bound holds in validation, in the schema and in OPTIONS; a value over one is a 400 naming the
field with a clear code, before any database work."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator

from api.registrations import RegistrationInputSerializer, RegistrationProfileInputSerializer
from api.renderers import dumps
from api.serializers.analytics import EventBatchInputSerializer, EventInputSerializer, fast_batch_events
from api.serializers.fields import json_object_size
from api.serializers.legacy import LegacyCustomerInputSerializer
from api.serializers.posts import PostInputSerializer
from api.serializers.users import UserInputSerializer
from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from tests.api.conftest import assert_problem
from tests.factories import make_post, make_user

#: (serializer, field, setting, a valid value of n characters)
TEXT_FIELDS = [
    (PostInputSerializer, "title", "POST_TITLE_MAX_CHARS", lambda n: "t" * n),
    (PostInputSerializer, "content", "POST_CONTENT_MAX_CHARS", lambda n: "🚀" * n),
    (UserInputSerializer, "username", "USER_USERNAME_MAX_CHARS", lambda n: "u" * n),
    (UserInputSerializer, "email", "USER_EMAIL_MAX_CHARS", lambda n: "e" * (n - 6) + "@a.example"[:6]),
    (UserInputSerializer, "first_name", "USER_NAME_MAX_CHARS", lambda n: "f" * n),
    (UserInputSerializer, "last_name", "USER_NAME_MAX_CHARS", lambda n: "l" * n),
    (RegistrationInputSerializer, "username", "USER_USERNAME_MAX_CHARS", lambda n: "u" * n),
    (RegistrationInputSerializer, "email", "USER_EMAIL_MAX_CHARS", lambda n: "e" * (n - 6) + "@a.example"[:6]),
    (RegistrationInputSerializer, "first_name", "USER_NAME_MAX_CHARS", lambda n: "f" * n),
    (RegistrationInputSerializer, "last_name", "USER_NAME_MAX_CHARS", lambda n: "l" * n),
    (RegistrationProfileInputSerializer, "bio", "PROFILE_BIO_MAX_CHARS", lambda n: "b" * n),
    (
        RegistrationProfileInputSerializer,
        "avatar_url",
        "PROFILE_AVATAR_URL_MAX_CHARS",
        lambda n: "https://a.example/" + "p" * (n - 18),
    ),
    (LegacyCustomerInputSerializer, "customer_name", "LEGACY_CUSTOMER_NAME_MAX_CHARS", lambda n: "c" * n),
    (
        LegacyCustomerInputSerializer,
        "customer_email",
        "LEGACY_CUSTOMER_EMAIL_MAX_CHARS",
        lambda n: "e" * (n - 6) + "@a.example"[:6],
    ),
    (EventInputSerializer, "event_type", "EVENT_TYPE_MAX_CHARS", lambda n: "v" * n),
    (EventInputSerializer, "session_id", "EVENT_SESSION_ID_MAX_CHARS", lambda n: "s" * n),
]


def _errors(serializer_class: Any, field: str, value: Any) -> list[Any]:
    serializer = serializer_class(data={field: value}, partial=True)
    serializer.is_valid()
    return serializer.errors.get(field, [])


@pytest.mark.parametrize(("serializer", "field", "setting", "text"), TEXT_FIELDS)
def test_every_text_field_takes_its_bound_and_refuses_one_more(serializer, field, setting, text) -> None:
    bound = getattr(settings, setting)
    assert _errors(serializer, field, text(bound)) == []
    errors = _errors(serializer, field, text(bound + 1))
    assert [e.code for e in errors] == ["max_length"], errors
    assert str(bound) in str(errors[0])


@pytest.mark.parametrize(("serializer", "field", "setting", "text"), TEXT_FIELDS)
def test_a_configured_bound_holds_in_validation_and_in_options(serializer, field, setting, text) -> None:
    with override_settings(**{setting: 30}):
        assert _errors(serializer, field, text(30)) == []
        assert [e.code for e in _errors(serializer, field, text(31))] == ["max_length"]
        assert serializer().fields[field].max_length == 30


def _component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["components"]["schemas"][name]


def test_the_schema_says_the_configured_bounds() -> None:
    with override_settings(
        POST_CONTENT_MAX_CHARS=77,
        EVENT_DATA_MAX_PROPERTIES=5,
        EVENT_DATA_MAX_DEPTH=3,
        EVENT_DATA_MAX_BYTES=999,
        EVENT_BATCH_MAX_EVENTS=42,
    ):
        schema = SchemaGenerator().get_schema(request=None, public=True)
    assert _component(schema, "PostInput")["properties"]["content"]["maxLength"] == 77
    data = _component(schema, "EventInput")["properties"]["data"]
    assert (data["type"], data["maxProperties"], data["x-max-depth"], data["x-max-bytes"]) == ("object", 5, 3, 999)
    assert _component(schema, "EventBatchInput")["properties"]["events"]["maxItems"] == 42


def test_the_committed_schema_has_the_default_bounds() -> None:
    import yaml

    with open(settings.BASE_DIR / "openapi" / "schema.yaml") as handle:
        schema = yaml.safe_load(handle)
    assert _component(schema, "PostInput")["properties"]["content"]["maxLength"] == 65_536
    assert _component(schema, "PostInput")["properties"]["title"]["maxLength"] == 200
    data = _component(schema, "EventInput")["properties"]["data"]
    assert (data["maxProperties"], data["x-max-depth"], data["x-max-bytes"]) == (100, 8, 16_384)
    assert _component(schema, "EventBatchInput")["properties"]["events"]["maxItems"] == 10_000


# --- event data ----------------------------------------------------------------------------------


def _nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep (itself level 1)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def _data_of_size(size: int) -> dict[str, Any]:
    """An object of exactly ``size`` bytes as written back."""
    data = {"s": ""}
    data["s"] = "x" * (size - len(dumps(data)))
    assert json_object_size(data) == size
    return data


def _data_errors(data: Any) -> list[Any]:
    return _errors(EventInputSerializer, "data", data)


def test_data_keys_depth_and_bytes_at_their_bounds_pass_and_one_more_is_refused() -> None:
    keys = settings.EVENT_DATA_MAX_PROPERTIES
    assert _data_errors({f"k{i}": i for i in range(keys)}) == []
    assert [e.code for e in _data_errors({f"k{i}": i for i in range(keys + 1)})] == ["max_properties"]
    depth = settings.EVENT_DATA_MAX_DEPTH
    assert _data_errors(_nested(depth)) == []
    assert [e.code for e in _data_errors(_nested(depth + 1))] == ["max_depth"]
    assert [e.code for e in _data_errors({"a": [[[[[[[[1]]]]]]]]})] == ["max_depth"]  # arrays are levels too
    size = settings.EVENT_DATA_MAX_BYTES
    assert _data_errors(_data_of_size(size)) == []
    assert [e.code for e in _data_errors(_data_of_size(size + 1))] == ["max_bytes"]


def test_data_bytes_are_counted_as_written_back() -> None:
    # A character JSON escapes is counted escaped; U+2028 as the renderer writes it (\u2028).
    assert json_object_size({"a": "\x01"}) == len(b'{"a":"\\u0001"}')
    assert json_object_size({"a": "\u2028"}) == len(b'{"a":"\\u2028"}')
    assert json_object_size({"a": "é"}) == len('{"a":"é"}'.encode())
    # PostgreSQL's jsonb gives a large float back as every digit of its value: 1e300 is 301 digits.
    assert json_object_size({"a": 1e300}) == len('{"a":}') + 301
    assert json_object_size({"a": -1.5e16}) == len('{"a":}') + len("-15000000000000000")
    assert json_object_size({"a": 2**70}) == len('{"a":}') + len(str(2**70))  # beyond 64 bits


@override_settings(EVENT_DATA_MAX_BYTES=64, EVENT_DATA_MAX_PROPERTIES=3, EVENT_DATA_MAX_DEPTH=2)
def test_configured_data_bounds_hold() -> None:
    assert _data_errors({"a": 1, "b": 2, "c": {"d": 1}}) == []
    assert [e.code for e in _data_errors({"a": 1, "b": 2, "c": 3, "d": 4})] == ["max_properties"]
    assert [e.code for e in _data_errors({"a": {"b": {}}})] == ["max_depth"]
    assert [e.code for e in _data_errors({"a": "x" * 60})] == ["max_bytes"]
    # Thirteen bytes of text read back as 1e300's 301 digits.
    assert [e.code for e in _data_errors({"a": 1e300})] == ["max_bytes"]


# --- batches and the fast path --------------------------------------------------------------------


def _serializer_events(body: Any) -> list[dict[str, Any]] | None:
    serializer = EventBatchInputSerializer(data=copy.deepcopy(body))
    if not serializer.is_valid():
        return None
    return [dict(event) for event in serializer.validated_data["events"]]


def _agree(body: Any) -> list[dict[str, Any]] | None:
    """The fast path and the serializer agree on ``body``: the fast path steps aside from anything
    the serializer refuses, and what it accepts it gives exactly as the serializer does."""
    fast = fast_batch_events(copy.deepcopy(body))
    slow = _serializer_events(body)
    if slow is None:
        assert fast is None
    elif fast is not None:
        assert fast == slow
    return slow


def _bodies() -> list[dict[str, Any]]:
    keys, depth, size = settings.EVENT_DATA_MAX_PROPERTIES, settings.EVENT_DATA_MAX_DEPTH, settings.EVENT_DATA_MAX_BYTES
    type_chars, session_chars = settings.EVENT_TYPE_MAX_CHARS, settings.EVENT_SESSION_ID_MAX_CHARS
    events = [
        {"event_type": "v" * type_chars, "session_id": "s" * session_chars},
        {"event_type": "v" * (type_chars + 1)},
        {"event_type": "v", "session_id": "s" * (session_chars + 1)},
        {"event_type": "v", "data": {f"k{i}": i for i in range(keys)}},
        {"event_type": "v", "data": {f"k{i}": i for i in range(keys + 1)}},
        {"event_type": "v", "data": _nested(depth)},
        {"event_type": "v", "data": _nested(depth + 1)},
        {"event_type": "v", "data": _data_of_size(size)},
        {"event_type": "v", "data": _data_of_size(size + 1)},
        {"event_type": "v", "data": {"f": 1e300}},
        {"event_type": "v", "data": {"f": [1.7976931348623157e308] * 60}},
    ]
    return [{"events": [{"event_type": "ok"}, event]} for event in events]


def test_the_fast_path_applies_the_same_bounds_as_the_serializer() -> None:
    outcomes = [_agree(body) is not None for body in _bodies()]
    assert outcomes == [True, False, False, True, False, True, False, True, False, True, False]


@override_settings(
    EVENT_TYPE_MAX_CHARS=5,
    EVENT_SESSION_ID_MAX_CHARS=4,
    EVENT_DATA_MAX_PROPERTIES=2,
    EVENT_DATA_MAX_DEPTH=2,
    EVENT_DATA_MAX_BYTES=40,
)
def test_the_fast_path_applies_configured_bounds_as_the_serializer_does() -> None:
    outcomes = [_agree(body) is not None for body in _bodies()]
    assert outcomes == [True, False, False, True, False, True, False, True, False, False, False]


@override_settings(EVENT_BATCH_MAX_EVENTS=3, EVENT_BATCH_MAX_DATA_BYTES=100)
def test_batch_totals_hold_on_both_paths() -> None:
    assert _agree({"events": [{"event_type": "v"}] * 3}) is not None
    assert _agree({"events": [{"event_type": "v"}] * 4}) is None
    serializer = EventBatchInputSerializer(data={"events": [{"event_type": "v"}] * 4})
    assert not serializer.is_valid() and serializer.errors["events"][0].code == "max_length"
    half = _data_of_size(50)
    assert _agree({"events": [{"event_type": "v", "data": half}] * 2}) is not None
    body = {"events": [{"event_type": "v", "data": half}, {"event_type": "v", "data": _data_of_size(51)}]}
    assert _agree(body) is None
    serializer = EventBatchInputSerializer(data=body)
    assert not serializer.is_valid()
    assert [e.code for e in serializer.errors["events"]] == ["max_bytes"]


# --- through the API: a 400 naming the field, nothing read or written ---------------------------


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])
def test_an_event_over_a_bound_is_a_400_before_any_analytics_query(client_) -> None:
    client_.get("/api/v1/analytics/events/?page_size=1")  # the token is remembered from here on
    for data, code in (
        ({"s": "x" * settings.EVENT_DATA_MAX_BYTES}, "max_bytes"),
        (_nested(settings.EVENT_DATA_MAX_DEPTH + 1), "max_depth"),
        ({f"k{i}": 1 for i in range(settings.EVENT_DATA_MAX_PROPERTIES + 1)}, "max_properties"),
    ):
        with CaptureQueriesContext(connections[aliases.ANALYTICS]) as analytics:
            response = client_.post("/api/v1/analytics/events/", {"event_type": "v", "data": data}, format="json")
            body = assert_problem(response, 400, "data")
            assert [e["code"] for e in body["errors"]] == [code]
            batch = {"events": [{"event_type": "ok"}, {"event_type": "v", "data": data}]}
            body = assert_problem(client_.post("/api/v1/analytics/events/batch/", batch, format="json"), 400)
            assert [(e["field"], e["code"]) for e in body["errors"]] == [("events[1].data", code)]
        assert len(analytics) == 0
    assert AnalyticsEvent.objects.count() == 0


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
def test_a_post_over_a_bound_is_a_400_and_an_update_reads_nothing_first(client_) -> None:
    author = make_user()
    post = make_post(author=author)
    too_long = "x" * (settings.POST_CONTENT_MAX_CHARS + 1)
    body = assert_problem(
        client_.post("/api/v1/posts/", {"title": "t", "content": too_long, "author_id": author.pk}, format="json"),
        400,
        "content",
    )
    assert [e["code"] for e in body["errors"]] == ["max_length"]
    client_.get(f"/api/v1/posts/{post.pk}/")  # the token is remembered from here on
    with CaptureQueriesContext(connections[aliases.DEFAULT]) as default:
        response = client_.patch(f"/api/v1/posts/{post.pk}/", {"content": too_long}, format="json")
    assert_problem(response, 400, "content")
    assert len(default) == 0
    assert Post.objects.count() == 1 and Post.objects.get().content == post.content
    # A body that is invalid in other ways still meets the preconditions first (412, 428).
    response = client_.put(f"/api/v1/posts/{post.pk}/", {"title": "only"}, format="json", HTTP_IF_MATCH='"stale"')
    assert_problem(response, 412)


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
@override_settings(POST_CONTENT_MAX_CHARS=10)
def test_a_configured_post_bound_is_answered_with_its_value(client_) -> None:
    author = make_user()
    body = assert_problem(
        client_.post("/api/v1/posts/", {"title": "t", "content": "x" * 11, "author_id": author.pk}, format="json"),
        400,
        "content",
    )
    assert body["errors"][0]["message"] == "Ensure this field has no more than 10 characters."
    response = client_.post(
        "/api/v1/posts/", {"title": "t", "content": "x" * 10, "author_id": author.pk}, format="json"
    )
    assert response.status_code == 201
    assert json.loads(response.content)["content"] == "x" * 10
