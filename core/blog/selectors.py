"""Reads of posts (default), with their authors joined from users_db by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import QuerySet

from core.blog.models import Post
from core.errors import NotFound
from core.users.selectors import usernames_by_id

#: Columns a post page needs.
LIST_FIELDS = ("id", "title", "content", "author_id", "created_at", "updated_at")


@dataclass(frozen=True)
class AuthorRef:
    id: int
    username: str


def post_list() -> QuerySet[Post]:
    """All posts, newest first (the model's order); the API layer filters and paginates."""
    return Post.objects.only(*LIST_FIELDS)


def post_get(*, post_id: int) -> Post:
    try:
        return Post.objects.get(pk=post_id)
    except Post.DoesNotExist:
        raise NotFound("post", post_id) from None


def posts_attach_authors(posts: Sequence[Post]) -> Sequence[Post]:
    """Set ``post.author`` (an :class:`AuthorRef`, or None when the user is gone) on every post.

    One query on users_db for the whole sequence (none when it is empty), never one per post.
    """
    names = usernames_by_id(user_ids={p.author_id for p in posts})
    for post in posts:
        name = names.get(post.author_id)
        post.author = AuthorRef(id=post.author_id, username=name) if name is not None else None
    return posts


def post_rows(queryset: QuerySet[Post]) -> QuerySet[Post]:
    """The list columns of ``queryset`` as plain dicts (``.values()``): the cheap path for pages."""
    return queryset.values(*LIST_FIELDS)


def post_rows_attach_authors(rows: Sequence[dict]) -> Sequence[dict]:
    """Set ``row["author"]`` to ``{"id", "username"}`` (None when the user is gone) on every row.

    One query on users_db for the whole page (none when it is empty), never one per post.
    """
    names = usernames_by_id(user_ids={row["author_id"] for row in rows})
    for row in rows:
        name = names.get(row["author_id"])
        row["author"] = {"id": row["author_id"], "username": name} if name is not None else None
    return rows
