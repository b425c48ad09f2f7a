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


def usernames_by_id(*, user_ids: Iterable[int]) -> dict[int, str]:
    """``{id: username}`` for the given ids: one query on users_db (or the replica the routers
    pick for this request), none for no ids. A page's worth of ids goes as one parameterised
    statement straight to a cursor: this runs on every list page, and building the same query
    through the ORM cost more than the query itself."""
    ids = sorted({int(i) for i in user_ids if i is not None})
    if not ids:
        return {}
    if len(ids) > _RAW_IN_MAX:
        return dict(User.objects.filter(pk__in=ids).values_list("id", "username"))
    connection = connections[router.db_for_read(User)]
    sql = (
        f"SELECT {connection.ops.quote_name('id')}, {connection.ops.quote_name('username')} "
        f"FROM {connection.ops.quote_name(User._meta.db_table)} "
        f"WHERE {connection.ops.quote_name('id')} IN ({', '.join(['%s'] * len(ids))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return dict(cursor.fetchall())


def user_names_by_id(*, user_ids: Iterable[int]) -> dict[int, User]:
    """``{id: User(id, username)}`` for the given ids: one query on users_db, none for no ids."""
    ids = {int(i) for i in user_ids if i is not None}
    if not ids:
        return {}
    return User.objects.only("id", "username").in_bulk(ids)
