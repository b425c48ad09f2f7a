"""Writes of posts (default). ``author_id`` must name a user on users_db (checked there)."""

from __future__ import annotations

from typing import Any

from core.blog.models import Post
from core.errors import FieldErrors
from core.users.selectors import user_exists
from routers.state import use_primary

EDITABLE_FIELDS = ("title", "content", "author_id")


def _check_author(author_id: int) -> None:
    # The author may have been created a moment ago: ask the primary, not a lagging replica.
    with use_primary():
        if not user_exists(user_id=author_id):
            raise FieldErrors({"author_id": [("does_not_exist", f"No user with id {author_id} exists.")]})


def post_create(*, author_id: int, title: str, content: str = "") -> Post:
    _check_author(author_id)
    post = Post(author_id=author_id, title=title, content=content)
    post.full_clean()
    post.save()
    return post


def post_update(*, post: Post, data: dict[str, Any]) -> Post:
    changed = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    if "author_id" in changed and changed["author_id"] != post.author_id:
        _check_author(changed["author_id"])
    for field, value in changed.items():
        setattr(post, field, value)
    post.full_clean()
    post.save()
    return post


def post_delete(*, post: Post) -> None:
    post.delete()
