"""Writes of users (users_db), and the cascade of a user's deletion to ``default``.

Uniqueness of ``username`` and ``email`` is checked on the primary that holds the table (reads
inside ``use_primary``), and a race that slips past the check is caught from the database's own
unique constraint and reported on the same field.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, router, transaction

from core.errors import FieldErrors, NotFound
from core.users.models import User
from routers.state import use_primary

EDITABLE_FIELDS = ("username", "email", "first_name", "last_name")


def _check_unique(*, username: str | None, email: str | None, exclude_id: int | None) -> None:
    errors: dict[str, list[tuple[str, str]]] = {}
    others = User.objects.all()
    if exclude_id is not None:
        others = others.exclude(pk=exclude_id)
    with use_primary():
        if username is not None and others.filter(username=username).exists():
            errors["username"] = [("unique", "A user with that username already exists.")]
        if email is not None and others.filter(email__iexact=email).exists():
            errors["email"] = [("unique", "A user with that email already exists.")]
    if errors:
        raise FieldErrors(errors)


def _save(user: User) -> User:
    db = router.db_for_write(User)  # the write alias, chosen by the routers
    try:
        with transaction.atomic(using=db):
            user.save()
    except IntegrityError as exc:
        text = str(exc).lower()
        field = "email" if "email" in text else "username"
        raise FieldErrors({field: [("unique", f"A user with that {field} already exists.")]}) from exc
    return user


def user_create(*, username: str, email: str, first_name: str = "", last_name: str = "") -> User:
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    user.full_clean(validate_unique=False)
    _check_unique(username=username, email=email, exclude_id=None)
    return _save(user)


def user_update(*, user: User, data: dict[str, Any]) -> User:
    changed = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    for field, value in changed.items():
        setattr(user, field, value)
    user.full_clean(validate_unique=False)
    _check_unique(
        username=changed.get("username"), email=changed.get("email"), exclude_id=user.pk
    )
    return _save(user)


def user_delete(*, user_id: int) -> None:
    """Delete a user and, on ``default``, their posts and profile.

    No distributed transaction: the rows on ``default`` go first, then the user. (A saga with
    compensation replaces this later.)
    """
    from core.blog.models import Post, UserProfile

    with use_primary():
        user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("user", user_id)
    Post.objects.filter(author_id=user_id).delete()
    UserProfile.objects.filter(user_id=user_id).delete()
    user.delete()
