"""Reads of users (users_db). The routers pick the alias; nothing here names one."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections, router
from django.db.models import QuerySet

from core.errors import NotFound
from core.users.models import User

#: Columns an API list needs (``.only`` keeps the page query lean).
LIST_FIELDS = ("id", "username", "email", "first_name", "last_name", "created_at", "updated_at")


def user_list() -> QuerySet[User]:
    """All users, in the model's order; the API layer filters, orders and paginates."""
    return User.objects.only(*LIST_FIELDS)


def user_get(*, user_id: int) -> User:
    try:
        return User.objects.get(pk=user_id)
    except User.DoesNotExist:
        raise NotFound("user", user_id) from None


def user_exists(*, user_id: int) -> bool:
    return User.objects.filter(pk=user_id).exists()


#: Up to this many ids go in one hand-written ``IN (...)``; more go through the ORM (which splits
#: a long list where a backend needs it).
_RAW_IN_MAX = 500


def usernames_by_id(*, user_ids: Iterable[int], using: str | None = None) -> dict[int, str]:
    """``{id: username}`` for the given ids: the one users-by-id selector. One query on users_db
    (or the replica the routers pick for this request; ``using``: the alias a fan-out part was
    given), none for no ids. A page's worth of ids goes as one parameterised statement straight
    to a cursor: this runs on every list page, and building the same query through the ORM cost
    more than the query itself."""
    ids = sorted({int(i) for i in user_ids if i is not None})
    if not ids:
        return {}
    alias = using or router.db_for_read(User)
    if len(ids) > _RAW_IN_MAX:
        return dict(User.objects.using(alias).filter(pk__in=ids).values_list("id", "username"))
    connection = connections[alias]
    sql = (
        f"SELECT {connection.ops.quote_name('id')}, {connection.ops.quote_name('username')} "
        f"FROM {connection.ops.quote_name(User._meta.db_table)} "
        f"WHERE {connection.ops.quote_name('id')} IN ({', '.join(['%s'] * len(ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return dict(cursor.fetchall())
