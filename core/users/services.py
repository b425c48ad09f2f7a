"""Writes of users (users_db), and a user's deletion everywhere (a saga over every database).

Uniqueness of ``username`` and ``email`` is checked on the primary that holds the table (reads
through ``User.objects.primary()``), and a race that slips past the check is caught from the database's own
unique constraint and reported on the same field.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.db.models.functions import Lower

from core.errors import FieldErrors
from core.users.models import User
from core.users.skeleton import username_skeleton
from routers.state import use_primary

EDITABLE_FIELDS = ("username", "email", "first_name", "last_name")


#: One definition of "the same user" for every way a user is created or renamed (the users
#: resource, registration, ``seed_demo``): usernames are NFKC-normalised and follow Django's
#: UnicodeUsernameValidator (letters, digits and @.+-_ only: no spaces, control or zero-width
#: characters); a username is taken when another user's looks the same: the same confusable
#: skeleton, case folded (``core.users.skeleton``: ``Ada``, ``ADA``, ``Аda`` with a Cyrillic А,
#: ``ad𝖺``); an email is taken when another user's is the same ignoring case. The database backs the
#: username rule with a unique index on ``username_skeleton`` (migration 0005).
UNIQUE_MESSAGES = {
    "username": "A user with this username, or one that looks the same, already exists.",
    "email": "A user with this email already exists.",
}
_username_validator = UnicodeUsernameValidator()


def normalize_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username)


def unique_error(field: str) -> FieldErrors:
    return FieldErrors({field: [("unique", UNIQUE_MESSAGES[field])]})


def unique_field_of(exc: BaseException) -> str:
    """The field whose uniqueness a database IntegrityError reports ("username", whose index is on
    ``username_skeleton``, unless it names email)."""
    return "email" if "email" in str(exc).lower() else "username"


def check_username(username: str) -> str:
    """The normalised username, or FieldErrors when it breaks the username rules."""
    normalized = normalize_username(username)
    try:
        _username_validator(normalized)
    except ValidationError as exc:
        raise FieldErrors({"username": [(exc.code or "invalid", m) for m in exc.messages]}) from None
    return normalized


def check_unique(*, username: str | None, email: str | None, exclude_id: int | None = None) -> None:
    """FieldErrors (code ``unique``) when another user has a username that looks like this one
    (the same ``username_skeleton``), or this email ignoring case.

    Read on the primary that holds the table (users_db), one query per field given."""
    errors: dict[str, list[tuple[str, str]]] = {}
    others = User.objects.primary()
    if exclude_id is not None:
        others = others.exclude(pk=exclude_id)
    # username_skeleton = key and LOWER(email) = lower(value): the columns and expressions of the
    # unique username_skeleton index and the LOWER(email) index, so both checks are index lookups.
    if username is not None and others.filter(username_skeleton=username_skeleton(username)).exists():
        errors["username"] = [("unique", UNIQUE_MESSAGES["username"])]
    if email is not None and others.alias(_e=Lower("email")).filter(_e=email.lower()).exists():
        errors["email"] = [("unique", UNIQUE_MESSAGES["email"])]
    if errors:
        raise FieldErrors(errors)


def _save(user: User) -> User:
    db = router.db_for_write(User)  # the write alias, chosen by the routers
    try:
        with transaction.atomic(using=db):
            user.save()
    except IntegrityError as exc:
        raise unique_error(unique_field_of(exc)) from exc
    return user


def user_create(*, username: str, email: str, first_name: str = "", last_name: str = "") -> User:
    username = check_username(username)
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    user.full_clean(validate_unique=False, validate_constraints=False)
    check_unique(username=username, email=email)
    return _save(user)


def user_update(*, user: User, data: dict[str, Any]) -> User:
    changed = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    if "username" in changed:
        changed["username"] = check_username(changed["username"])
    for field, value in changed.items():
        setattr(user, field, value)
    user.full_clean(validate_unique=False, validate_constraints=False)
    check_unique(username=changed.get("username"), email=changed.get("email"), exclude_id=user.pk)
    return _save(user)


def user_delete(*, user_id: int, precondition: Any = None) -> dict[str, Any]:
    """Delete a user everywhere: cache entries (cache_db), posts and profile (default), analytics
    events anonymised or deleted per ``USER_DELETION_ANALYTICS`` (analytics_db), then the user.

    Delegates to the deletion saga (:func:`core.services.user_deletion.user_delete_everywhere`):
    all or nothing. Raises NotFound for an unknown user; SourceUnavailable (503) or Conflict (409)
    subclasses naming the failed step, after the earlier steps were undone.
    """
    from core.services.user_deletion import user_delete_everywhere

    with use_primary():  # the existence check and the saga's reads see the primaries
        return user_delete_everywhere(user_id=user_id, precondition=precondition)
