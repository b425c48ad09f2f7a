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
    # One INSERT in autocommit commits on its own (no BEGIN/COMMIT round trips around it: two of
    # the seven round trips a create made); the stats invalidation (transaction.on_commit) then
    # runs right after it, still inside the fence, as it ran at the end of the atomic block.
    with users_fenced([author_id], field="author_id"):
        post.full_clean()
        post.save(force_insert=True)
    return post


def post_author_fence(data: dict[str, Any]) -> Any:
    """The users fence for an update that may set ``author_id``, for a caller that wraps the
    update in its own transaction on default (the fence must stay held until that commits)."""
    return users_fenced([data.get("author_id")], field="author_id")


def post_update(*, post: Post, data: dict[str, Any]) -> Post:
    changed = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    new_author = changed.get("author_id") if changed.get("author_id") != post.author_id else None
    for field, value in changed.items():
        setattr(post, field, value)
    # A new author is fenced (core.users.fence). The current one needs no fence: the update never
    # creates a row (force_update: a row the author's deletion removed is a 404, not re-inserted),
    # and a deletion's DELETE waits for this row's lock and then removes it.
    with users_fenced([new_author], field="author_id"):
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
