"""Analytics events (analytics_db)."""

from rest_framework import serializers

from api.serializers.fields import AwareDateTimeField, IdField, JSONObjectField, StrictCharField
from core.analytics.models import AnalyticsEvent
from core.analytics.services import CONTROL_MESSAGE, MAX_BATCH, has_control_characters


class EventOutputSerializer(serializers.ModelSerializer):
    data = serializers.JSONField()

    class Meta:
        model = AnalyticsEvent
        fields = ["id", "event_type", "user_id", "session_id", "timestamp", "data"]
        read_only_fields = fields


class EventInputSerializer(serializers.Serializer):
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


class EventBatchInputSerializer(serializers.Serializer):
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
