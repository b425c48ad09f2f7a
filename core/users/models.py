from django.db import models
from django.db.models.functions import Lower

from core.querysets import RoutedQuerySet


class User(models.Model):
    """A Switchyard user. Lives on users_db; other databases refer to it by plain id."""

    objects = RoutedQuerySet.as_manager()

    username = models.CharField(max_length=150, unique=True)
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    #: The deletion saga that owns this user while it deletes them everywhere (``None``: not being
    #: deleted). Writes that name the user (posts, profiles, events) lock the row FOR KEY SHARE and
    #: refuse a user whose deletion has begun (``core.users.fence``; docs/sagas.md).
    deleting_saga_id = models.BigIntegerField(null=True, blank=True, default=None)

    class Meta:
        db_table = "users_user"
        ordering = ["id"]
        # Built CONCURRENTLY on PostgreSQL by migration 0002 (RunSQL), declared here for the state.
        indexes = [models.Index(Lower("email"), name="users_user_email_lower")]
        # One user per username whatever its case (built CONCURRENTLY on PostgreSQL by migration 0003).
        constraints = [models.UniqueConstraint(Lower("username"), name="users_user_username_lower_uniq")]

    def __str__(self) -> str:
        return self.username
