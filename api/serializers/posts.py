"""Posts (default) with their author embedded from users_db."""

from rest_framework import serializers

from api.serializers.fields import IdField, StrictCharField
from core.blog.models import Post


class PostAuthorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class PostOutputSerializer(serializers.ModelSerializer):
    author = PostAuthorSerializer(
        allow_null=True, read_only=True, help_text="The author from users_db; null when that user no longer exists."
    )

    class Meta:
        model = Post
        fields = ["id", "title", "content", "author_id", "author", "created_at", "updated_at"]
        read_only_fields = fields


class PostInputSerializer(serializers.Serializer):
    title = StrictCharField(max_length=200)
    content = StrictCharField(required=False, allow_blank=True, default="")
    author_id = IdField(help_text="The id of an existing user (users_db); otherwise a 400 on `author_id`.")
