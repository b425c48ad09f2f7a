"""Users (users_db)."""

from typing import Any

from rest_framework import serializers

from api.permissions import PII_FIELDS, PII_NOTE, may_read_pii
from api.serializers.fields import StrictCharField, StrictEmailField

from core.users.models import User


class UserOutputSerializer(serializers.ModelSerializer):
    """A user. ``email``, ``first_name`` and ``last_name`` are null unless the caller may read this
    user's personal data (``context["request"]``; without one, never: fail closed)."""

    email = serializers.EmailField(allow_null=True, read_only=True, help_text=PII_NOTE)
    first_name = serializers.CharField(allow_null=True, read_only=True, help_text=PII_NOTE)
    last_name = serializers.CharField(allow_null=True, read_only=True, help_text=PII_NOTE)

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "created_at", "updated_at"]
        read_only_fields = fields

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not may_read_pii(self.context.get("request"), data["id"]):
            for name in PII_FIELDS:
                data[name] = None
        return data


class UserInputSerializer(serializers.Serializer):
    """Create (all required but names) and replace; PATCH accepts any subset."""

    username = StrictCharField(max_length=150, help_text="Unique among users.")
    email = StrictEmailField(max_length=254, help_text="Unique among users (case-insensitive).")
    first_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
