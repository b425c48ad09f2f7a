"""Reads of users (users_db). The routers pick the alias; nothing here names one."""

from __future__ import annotations

from collections.abc import Iterable

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


def usernames_by_id(*, user_ids: Iterable[int]) -> dict[int, str]:
    """``{id: username}`` for the given ids: one query on users_db (tuples, no model instances)."""
    ids = {int(i) for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(User.objects.filter(pk__in=ids).values_list("id", "username"))


def user_names_by_id(*, user_ids: Iterable[int]) -> dict[int, User]:
    """``{id: User(id, username)}`` for the given ids: one query on users_db, none for no ids."""
    ids = {int(i) for i in user_ids if i is not None}
    if not ids:
        return {}
    return User.objects.only("id", "username").in_bulk(ids)
