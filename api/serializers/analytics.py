"""Analytics events (analytics_db)."""

from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from api.serializers.fields import (
    BIGINT_MAX,
    AwareDateTimeField,
    IdField,
    JSONObjectField,
    StrictCharField,
    _check_json_strings,
)
from api.serializers.input import InputSerializer
from api.serializers.output import OutputSerializer
from core.analytics.services import CONTROL_MESSAGE, MAX_BATCH, has_control_characters


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
    event_type = StrictCharField(max_length=50, help_text="The kind of event; no control or invisible characters.")
    user_id = IdField(required=False, allow_null=True, default=None)
    session_id = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    timestamp = AwareDateTimeField(
        required=False, help_text="When it happened (default: now); ISO 8601 with a timezone (`2026-11-25T10:00:00Z`)."
    )
    data = JSONObjectField(required=False, default=dict, help_text="Free-form JSON object.")

    def validate_event_type(self, value: str) -> str:
        if has_control_characters(value):
            raise serializers.ValidationError(CONTROL_MESSAGE, code="invalid")
        return value


class EventBatchInputSerializer(InputSerializer):
    events = EventInputSerializer(
        many=True, allow_empty=False, max_length=MAX_BATCH, help_text=f"1 to {MAX_BATCH} events, written all or none."
    )


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
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BATCH:
        return None
    zone = timezone.get_current_timezone()
    events: list[dict[str, Any]] = []
    for item in raw:
        if not isinstance(item, dict) or not item.keys() <= _EVENT_KEYS:
            return None
        event_type = _plain_text(item.get("event_type"), 50, blank=False)
        if event_type is None or has_control_characters(event_type):
            return None
        user_id = item.get("user_id")
        if user_id is not None and (type(user_id) is not int or not 1 <= user_id <= BIGINT_MAX):
            return None
        session_id = _plain_text(item.get("session_id", ""), 100, blank=True)
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
            _check_json_strings(payload)
        except serializers.ValidationError:
            return None
        event["data"] = payload
        events.append(event)
    return events
