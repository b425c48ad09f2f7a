"""Posts (default) with their author embedded from users_db."""

from rest_framework import serializers

from api.serializers.fields import IdField, Limit, StrictCharField
from api.serializers.input import InputSerializer
from api.serializers.output import OutputSerializer


class PostAuthorSerializer(OutputSerializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


# The fields a ModelSerializer of Post would build (same schema), written through a plan made once
# (api.serializers.output).
class PostOutputSerializer(OutputSerializer):
    id = serializers.BigIntegerField(label="ID", read_only=True)
    title = serializers.CharField(read_only=True)
    content = serializers.CharField(read_only=True, style={"base_template": "textarea.html"})
    author_id = serializers.BigIntegerField(read_only=True)
    author = PostAuthorSerializer(
        allow_null=True, read_only=True, help_text="The author from users_db; null when that user no longer exists."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class PostInputSerializer(InputSerializer):
    title = StrictCharField(max_length=Limit("POST_TITLE_MAX_CHARS"))
    content = StrictCharField(max_length=Limit("POST_CONTENT_MAX_CHARS"), required=False, allow_blank=True, default="")
    author_id = IdField(help_text="The id of an existing user (users_db); otherwise a 400 on `author_id`.")
