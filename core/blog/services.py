"""Writes of posts (default). ``author_id`` must name a user on users_db that is not being deleted:
each write runs inside the users fence (:mod:`core.users.fence`), so a post never outlives its author."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, router, transaction

from core.blog.models import Post
from core.errors import NotFound
from core.users.fence import users_fenced

EDITABLE_FIELDS = ("title", "content", "author_id")


def post_create(*, author_id: int, title: str, content: str = "") -> Post:
    post = Post(author_id=author_id, title=title, content=content)
    # The author is locked on users_db's primary (FOR KEY SHARE) until the post has committed.
    with users_fenced([author_id], field="author_id"):
        post.full_clean()
        with transaction.atomic(using=router.db_for_write(Post)):
            post.save(force_insert=True)
    return post


def post_update(*, post: Post, data: dict[str, Any]) -> Post:
    changed = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    for field, value in changed.items():
        setattr(post, field, value)
    # Fenced on the (new) author: a post whose author's deletion has begun cannot be changed, and an
    # update never re-inserts a row the deletion removed (force_update: 0 rows is a 404).
    with users_fenced([post.author_id], field="author_id"):
        post.full_clean()
        try:
            with transaction.atomic(using=router.db_for_write(Post)):
                post.save(force_update=True)
        except DatabaseError as exc:
            if "did not affect any rows" in str(exc):
                raise NotFound("post", post.pk) from None
            raise
    return post


def post_delete(*, post: Post) -> None:
    post.delete()
