"""Reads of posts (default), with their authors joined from users_db by id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connections
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from core.blog.models import Post
from core.errors import NotFound
from core.services.sql import in_clause
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


#: The stored tsvector of a post's title and content, on PostgreSQL only (migration 0002, which
#: also holds its GIN index); not a model field: the server writes it, Django never does.
SEARCH_COLUMN = "search_vector"
#: The text search configuration the column was built with (English stemming and stop words).
SEARCH_CONFIG = "english"


def post_search(*, queryset: QuerySet[Post], terms: Sequence[str]) -> QuerySet[Post]:
    """The posts of ``queryset`` that match every one of ``terms``.

    PostgreSQL: full-text search on words, through the GIN index: ``running`` finds "run" and
    "runs" (English stemming, case-insensitive), common words such as "the" are ignored (a search
    of nothing else matches no post), a term is a whole word, not a part of one. Elsewhere
    (SQLite): each term is a case-insensitive substring of the title or the content, as the other
    lists search.
    """
    if connections[queryset.db].vendor == "postgresql":
        column = f"{connections[queryset.db].ops.quote_name(Post._meta.db_table)}.{SEARCH_COLUMN}"
        document = RawSQL(column, [], output_field=SearchVectorField())
        query = SearchQuery(" ".join(terms), config=SEARCH_CONFIG, search_type="plain")
        return queryset.alias(document=document).filter(document=query)
    match = Q()
    for term in terms:
        match &= Q(title__icontains=term) | Q(content__icontains=term)
    return queryset.filter(match)


def post_get(*, post_id: int) -> Post:
    post = Post.objects.by_pk(post_id)
    if post is None:
        raise NotFound("post", post_id)
    return post


def recent_posts_statement(alias: str, *, author_id: int, limit: int) -> tuple[str, list[Any]]:
    """Rows ``(id, title, created_at, updated_at)`` of the ``limit`` newest posts of ``author_id``
    (hand-written for the dashboard, see :func:`core.users.selectors.user_statement`)."""
    sql = (
        f"SELECT id, title, created_at, updated_at FROM {Post._meta.db_table} "
        "WHERE author_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
    )
    return sql, [author_id, limit]


def post_count_of_author(*, author_id: int) -> QuerySet[Post]:
    """The posts of ``author_id`` (to count: a queryset, not run)."""
    return Post.objects.filter(author_id=author_id)


def top_authors_statement(alias: str, *, limit: int) -> tuple[str, list[Any]]:
    """Rows ``(author_id, posts, total posts, total authors)`` of the ``limit`` authors with the
    most posts: one grouping, the totals through window functions over it."""
    sql = (
        "SELECT author_id, COUNT(*) AS n, SUM(COUNT(*)) OVER () AS posts, COUNT(*) OVER () AS authors "
        f"FROM {Post._meta.db_table} GROUP BY author_id ORDER BY n DESC, author_id LIMIT %s"
    )
    return sql, [limit]


def newest_posts_of_authors_statement(alias: str, *, author_ids: Sequence[int], per_author: int) -> tuple[str, list]:
    """Rows ``(id, title, created_at, author_id, author's post count)``: the ``per_author``
    newest posts of each author, in one windowed statement."""
    condition, params = in_clause(alias, "author_id", author_ids)
    sql = (
        "SELECT id, title, created_at, author_id, n FROM ("
        "SELECT id, title, created_at, author_id, "
        "ROW_NUMBER() OVER (PARTITION BY author_id ORDER BY created_at DESC, id DESC) AS rn, "
        "COUNT(*) OVER (PARTITION BY author_id) AS n "
        f"FROM {Post._meta.db_table} WHERE {condition}) AS ranked "
        "WHERE rn <= %s ORDER BY author_id, rn"
    )
    return sql, [*params, per_author]


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
