"""Analytics events (analytics_db)."""

from typing import Any

from django.core.validators import MaxLengthValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from api.serializers.fields import (
    BIGINT_MAX,
    AwareDateTimeField,
    IdField,
    JSONObjectField,
    Limit,
    StrictCharField,
    json_object_size,
)
from api.serializers.input import InputSerializer
from api.serializers.output import OutputSerializer
from core.analytics.services import CONTROL_MESSAGE, has_control_characters

# The bounds of an event and of a batch (docs/api.md, "Limits"), shared by the serializers and
# by the batch's fast path below.
TYPE_CHARS = Limit("EVENT_TYPE_MAX_CHARS")
SESSION_CHARS = Limit("EVENT_SESSION_ID_MAX_CHARS")
DATA_PROPERTIES = Limit("EVENT_DATA_MAX_PROPERTIES")
DATA_DEPTH = Limit("EVENT_DATA_MAX_DEPTH")
DATA_BYTES = Limit("EVENT_DATA_MAX_BYTES")
BATCH_EVENTS = Limit("EVENT_BATCH_MAX_EVENTS")
BATCH_DATA_BYTES = Limit("EVENT_BATCH_MAX_DATA_BYTES")
DATA_HELP = (
    "Free-form JSON object: at most `maxProperties` keys (`EVENT_DATA_MAX_PROPERTIES`), nested at most "
    "`x-max-depth` levels (`EVENT_DATA_MAX_DEPTH`; the object itself is level 1) and at most `x-max-bytes` "
    "bytes (`EVENT_DATA_MAX_BYTES`) as the API writes it back: compact UTF-8 JSON, a float of 1e16 or more "
    "counted as all the digits of its integer value (PostgreSQL gives it back so)."
)


# The fields a ModelSerializer of AnalyticsEvent builds (same schema), written through a plan made
# once (api.serializers.output).
class EventOutputSerializer(OutputSerializer):
    id = serializers.BigIntegerField(label="ID", read_only=True)
    event_type = serializers.CharField(read_only=True)
    user_id = serializers.BigIntegerField(allow_null=True, read_only=True)
    session_id = serializers.CharField(read_only=True)
    timestamp = serializers.DateTimeField(read_only=True)
    data = serializers.JSONField()


class EventInputSerializer(InputSerializer):
    event_type = StrictCharField(
        max_length=TYPE_CHARS, help_text="The kind of event; no control or invisible characters."
    )
    user_id = IdField(required=False, allow_null=True, default=None)
    session_id = StrictCharField(max_length=SESSION_CHARS, required=False, allow_blank=True, default="")
    timestamp = AwareDateTimeField(
        required=False, help_text="When it happened (default: now); ISO 8601 with a timezone (`2026-11-25T10:00:00Z`)."
    )
    data = JSONObjectField(
        required=False,
        default=dict,
        max_properties=DATA_PROPERTIES,
        max_depth=DATA_DEPTH,
        max_bytes=DATA_BYTES,
        help_text=DATA_HELP,
    )

    def validate_event_type(self, value: str) -> str:
        if has_control_characters(value):
            raise serializers.ValidationError(CONTROL_MESSAGE, code="invalid")
        return value


class EventListSerializer(serializers.ListSerializer):
    """The events of a batch: at most ``EVENT_BATCH_MAX_EVENTS`` (read when used; the schema's
    ``maxItems``), counted before any event is validated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.validators = [*self.validators, MaxLengthValidator(BATCH_EVENTS)]

    def to_internal_value(self, data: Any) -> Any:
        limit = BATCH_EVENTS()
        if isinstance(data, list) and len(data) > limit:
            self.fail("max_length", max_length=limit)
        return super().to_internal_value(data)


class EventBatchInputSerializer(InputSerializer):
    events = EventListSerializer(
        child=EventInputSerializer(),
        allow_empty=False,
        help_text="1 to `maxItems` events (`EVENT_BATCH_MAX_EVENTS`), written all or none; their `data` "
        "together at most `EVENT_BATCH_MAX_DATA_BYTES` bytes (measured as each event's `data`).",
    )

    def validate_events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        limit = BATCH_DATA_BYTES()
        total = sum(json_object_size(event["data"]) for event in events)
        if total > limit:
            raise serializers.ValidationError(
                f"Ensure the events' data is no more than {limit} bytes together (it is {total}).", code="max_bytes"
            )
        return events


class EventBatchOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="How many events were written.")


class EventSummaryQuerySerializer(serializers.Serializer):
    user_id = IdField(strict=False, required=False, help_text="Only this user's events.")
    since = AwareDateTimeField(required=False, help_text="At or after this time; ISO 8601 with a timezone.")
    until = AwareDateTimeField(required=False, help_text="Before this time; ISO 8601 with a timezone.")


class EventSummaryCountSerializer(serializers.Serializer):
    event_type = serializers.CharField()
    count = serializers.IntegerField()


class EventSummaryOutputSerializer(serializers.Serializer):
    counts = EventSummaryCountSerializer(many=True, help_text="Largest count first.")
    total = serializers.IntegerField()


_EVENT_KEYS = frozenset({"event_type", "user_id", "session_id", "timestamp", "data"})


def _plain_text(value: Any, max_length: int, *, blank: bool) -> str | None:
    """The text ``StrictCharField`` would accept unchanged, or None (let the serializer decide)."""
    if not isinstance(value, str) or len(value) > max_length or value != value.strip():
        return None
    if (not value and not blank) or "\x00" in value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def fast_batch_events(data: Any) -> list[dict[str, Any]] | None:
    """The batch's hot path: the same ``validated_data["events"]`` as ``EventBatchInputSerializer``
    for a batch in which every event is plainly valid, about five times faster (a test keeps the
    two equal); None as soon as anything is unusual, and then the serializer validates the batch
    and words the errors."""
    if not isinstance(data, dict) or set(data) != {"events"}:
        return None
    raw = data["events"]
    if not isinstance(raw, list) or not 1 <= len(raw) <= BATCH_EVENTS():
        return None
    zone = timezone.get_current_timezone()
    type_chars, session_chars, total_bytes = TYPE_CHARS(), SESSION_CHARS(), BATCH_DATA_BYTES()
    bounds = {"max_properties": DATA_PROPERTIES(), "max_depth": DATA_DEPTH(), "max_bytes": DATA_BYTES()}
    total = 0
    events: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict) or not item.keys() <= _EVENT_KEYS:
            return None
        event_type = _plain_text(item.get("event_type"), type_chars, blank=False)
        if event_type is None or has_control_characters(event_type):
            return None
        user_id = item.get("user_id")
        if user_id is not None and (type(user_id) is not int or not 1 <= user_id <= BIGINT_MAX):
            return None
        session_id = _plain_text(item.get("session_id", ""), session_chars, blank=True)
        if session_id is None:
            return None
        event: dict[str, Any] = {"event_type": event_type, "user_id": user_id, "session_id": session_id}
        if "timestamp" in item:
            stamp = item["timestamp"]
            if not isinstance(stamp, str) or stamp != stamp.strip():
                return None
            try:
                parsed = parse_datetime(stamp)
            except ValueError:
                return None
            if parsed is None or parsed.tzinfo is None:
                return None
            event["timestamp"] = parsed.astimezone(zone)
        payload = item.get("data", {})
        if not isinstance(payload, dict):
            return None
        try:
            total += json_object_size(payload, **bounds)
        except serializers.ValidationError:
            return None
        event["data"] = payload
        events.append(event)
    if total > total_bytes:
        return None
    return events
