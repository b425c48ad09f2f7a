"""The batch ingest's fast path validates exactly as the serializer does, or steps aside."""

from __future__ import annotations

import copy

import pytest

from api.serializers.analytics import EventBatchInputSerializer, fast_batch_events


def _serializer(data):  # type: ignore[no-untyped-def]
    serializer = EventBatchInputSerializer(data=copy.deepcopy(data))
    assert serializer.is_valid(), serializer.errors
    return [dict(event) for event in serializer.validated_data["events"]]


VALID = {
    "events": [
        {"event_type": "click"},
        {
            "event_type": "page_view",
            "user_id": 7,
            "session_id": "s-1",
            "timestamp": "2026-11-25T10:00:00Z",
            "data": {"path": "/a", "n": 3, "nested": {"list": [1, "zoë 🚀", None, True, 1.5]}},
        },
        {"event_type": "ünïcode-✓", "user_id": None, "session_id": "", "data": {}},
        {
            "event_type": "x" * 50,
            "user_id": 2**63 - 1,
            "session_id": "y" * 100,
            "timestamp": "2026-11-25T12:30:15.123456+05:30",
        },
        {"event_type": "purchase", "timestamp": "2026-01-01T00:00:00-08:00", "data": {"": ""}},
    ]
}


def test_fast_path_gives_exactly_the_serializers_validated_data():
    fast = fast_batch_events(copy.deepcopy(VALID))
    assert fast is not None
    assert fast == _serializer(VALID)


@pytest.mark.parametrize(
    "event",
    [
        {},  # event_type required
        {"event_type": ""},
        {"event_type": "   "},
        {"event_type": " padded "},  # the serializer trims: leave it the wording
        {"event_type": "x" * 51},
        {"event_type": "tab\there"},
        {"event_type": "nul\x00"},
        {"event_type": 5},
        {"event_type": "a", "user_id": 0},
        {"event_type": "a", "user_id": 2**63},
        {"event_type": "a", "user_id": True},
        {"event_type": "a", "user_id": 1.0},
        {"event_type": "a", "user_id": "3"},
        {"event_type": "a", "session_id": None},
        {"event_type": "a", "session_id": "z" * 101},
        {"event_type": "a", "timestamp": "2026-11-25T10:00:00"},  # naive
        {"event_type": "a", "timestamp": "2026-11-25"},
        {"event_type": "a", "timestamp": "yesterday"},
        {"event_type": "a", "timestamp": None},
        {"event_type": "a", "data": []},
        {"event_type": "a", "data": None},
        {"event_type": "a", "data": {"k": "nul\x00"}},
        {"event_type": "a", "data": {"k": "\ud800"}},
        {"event_type": "a", "unknown": 1},
        "not an object",
    ],
)
def test_anything_unusual_is_left_to_the_serializer(event):
    assert fast_batch_events({"events": [{"event_type": "ok"}, event]}) is None


@pytest.mark.parametrize(
    "body",
    [
        {"events": []},
        {"events": {}},
        {},
        [],
        {"events": [{"event_type": "a"}], "x": 1},
        {"events": [{"event_type": "a"}] * 10_001},
    ],
)
def test_batch_shapes_it_does_not_know_are_left_to_the_serializer(body):
    assert fast_batch_events(body) is None
