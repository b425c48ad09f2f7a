"""Users (users_db)."""

from rest_framework import serializers

from api.serializers.fields import StrictCharField, StrictEmailField

from core.users.models import User


class UserOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "created_at", "updated_at"]
        read_only_fields = fields


class UserInputSerializer(serializers.Serializer):
    """Create (all required but names) and replace; PATCH accepts any subset."""

    username = StrictCharField(max_length=150, help_text="Unique among users.")
    email = StrictEmailField(max_length=254, help_text="Unique among users (case-insensitive).")
    first_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = StrictCharField(max_length=150, required=False, allow_blank=True, default="")
