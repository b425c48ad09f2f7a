from django.db import models

from core.querysets import RoutedQuerySet


class Post(models.Model):
    """A blog post on default. ``author_id`` names a user on users_db: no foreign key across databases."""

    title = models.CharField(max_length=200)
    content = models.TextField(blank=True, default="")
    author_id = models.BigIntegerField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RoutedQuerySet.as_manager()

    class Meta:
        db_table = "blog_post"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["author_id", "-created_at"], name="blog_post_author_created")]

    def __str__(self) -> str:
        return self.title


class UserProfile(models.Model):
    """A user's profile on default, keyed by the users_db user id."""

    user_id = models.BigIntegerField(unique=True)
    bio = models.TextField(blank=True, default="")
    avatar_url = models.URLField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "blog_userprofile"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"profile of user {self.user_id}"
