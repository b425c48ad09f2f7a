from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.functions import Lower

from core.querysets import RoutedQuerySet
from core.users.skeleton import username_skeleton

SKELETON_INDEX = "users_user_username_skeleton_uniq"


class UserQuerySet(RoutedQuerySet):
    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> Any:
        """``bulk_create`` with each new user's ``username_skeleton`` filled in (``save()`` is not called)."""
        objs = list(objs)
        for user in objs:
            if not user.username_skeleton:
                user.username_skeleton = username_skeleton(user.username)
        return super().bulk_create(objs, *args, **kwargs)


class User(models.Model):
    """A Switchyard user. Lives on users_db; other databases refer to it by plain id."""

    objects = UserQuerySet.as_manager()

    username = models.CharField(max_length=150, unique=True)
    #: The username's look-alike key (``core.users.skeleton``): the SHA-256 of its confusable
    #: skeleton without case, so ``demo``, ``DEMO`` and ``dеmo`` (Cyrillic е) share one. Unique:
    #: users_db keeps one user per look-alike. Written by ``save()`` and ``bulk_create`` from the
    #: username; ``kept:<id>`` on a look-alike that existed before the rule (migration 0005).
    username_skeleton = models.CharField(max_length=64, blank=True, editable=False)
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
        # One user per look-alike username, case included (built CONCURRENTLY on PostgreSQL by
        # migration 0005, which replaced 0003's unique LOWER(username) index).
        constraints = [models.UniqueConstraint(fields=["username_skeleton"], name=SKELETON_INDEX)]

    def __str__(self) -> str:
        return self.username

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any) -> User:
        user = super().from_db(db, field_names, values)
        # The username as read, so that save() recomputes the key only on a rename.
        user.stored_username = user.__dict__.get("username")
        return user

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.username_skeleton or self.username != getattr(self, "stored_username", None):
            self.username_skeleton = username_skeleton(self.username)
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "username_skeleton"}
        super().save(*args, **kwargs)
        self.stored_username = self.username
