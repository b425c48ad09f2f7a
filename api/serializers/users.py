"""Users (users_db)."""

from typing import Any

from rest_framework import serializers

from api.permissions import PII_FIELDS, PII_NOTE, may_read_pii
from api.serializers.fields import Limit, StrictCharField, StrictEmailField
from api.serializers.input import InputSerializer
from api.serializers.output import OutputSerializer

#: The bounds of a user's text (docs/api.md, "Limits"); registrations use the same.
USERNAME_CHARS = Limit("USER_USERNAME_MAX_CHARS")
EMAIL_CHARS = Limit("USER_EMAIL_MAX_CHARS")
NAME_CHARS = Limit("USER_NAME_MAX_CHARS")


# The fields a ModelSerializer of User would build (same schema), written through a plan made
# once (api.serializers.output), not built from the model for every instance.
class UserOutputSerializer(OutputSerializer):
    """A user. ``email``, ``first_name`` and ``last_name`` are null unless the caller may read this
    user's personal data (``context["request"]``; without one, never: fail closed)."""

    id = serializers.BigIntegerField(label="ID", read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.EmailField(allow_null=True, read_only=True, help_text=PII_NOTE)
    first_name = serializers.CharField(allow_null=True, read_only=True, help_text=PII_NOTE)
    last_name = serializers.CharField(allow_null=True, read_only=True, help_text=PII_NOTE)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def finish(self, data: dict[str, Any]) -> dict[str, Any]:
        if not may_read_pii(self.context.get("request"), data["id"]):
            for name in PII_FIELDS:
                data[name] = None
        return data


class UserInputSerializer(InputSerializer):
    """Create (all required but names) and replace; PATCH accepts any subset."""

    username = StrictCharField(max_length=USERNAME_CHARS, help_text="Unique among users.")
    email = StrictEmailField(max_length=EMAIL_CHARS, help_text="Unique among users (case-insensitive).")
    first_name = StrictCharField(max_length=NAME_CHARS, required=False, allow_blank=True, default="")
    last_name = StrictCharField(max_length=NAME_CHARS, required=False, allow_blank=True, default="")
