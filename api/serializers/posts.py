"""Posts (default) with their author embedded from users_db."""

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from api.serializers.fields import IdField, StrictCharField


class PostAuthorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


# A plain Serializer with the fields a ModelSerializer of Post would build (same schema), not
# rebuilt from the model for every instance (issue 12).
class PostOutputSerializer(serializers.Serializer):
    id = serializers.BigIntegerField(label="ID", read_only=True)
    title = serializers.CharField(read_only=True)
    content = serializers.CharField(read_only=True, style={"base_template": "textarea.html"})
    author_id = serializers.BigIntegerField(read_only=True)
    author = PostAuthorSerializer(
        allow_null=True, read_only=True, help_text="The author from users_db; null when that user no longer exists."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class PostInputSerializer(serializers.Serializer):
    title = StrictCharField(max_length=200)
    content = StrictCharField(required=False, allow_blank=True, default="")
    author_id = IdField(help_text="The id of an existing user (users_db); otherwise a 400 on `author_id`.")


def _iso(value: dt.datetime, zone: dt.tzinfo) -> str:
    """What DRF's DateTimeField writes: ISO 8601 in the current time zone, ``Z`` for UTC."""
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def post_rows_output(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The list's hot path: the same JSON as ``PostOutputSerializer`` (a test keeps them equal),
    built from ``.values()`` rows without a serializer instance per post."""
    zone = timezone.get_current_timezone()  # once per page, not twice per post
    return [
        {
            "id": row["id"],
            "title": row["title"],
            "content": row["content"],
            "author_id": row["author_id"],
            "author": row["author"],
            "created_at": _iso(row["created_at"], zone),
            "updated_at": _iso(row["updated_at"], zone),
        }
        for row in rows
    ]
