"""Typed factories for tests. They never name a database: the routers decide where rows go."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.legacy.models import LegacyCustomer
from core.tokens import scopes as scope_names
from core.tokens.services import IssuedToken, token_create
from core.users.models import User

_seq = itertools.count(1)


def make_user(**fields: Any) -> User:
    n = next(_seq)
    fields.setdefault("username", f"user{n}")
    fields.setdefault("email", f"user{n}@example.com")
    fields.setdefault("first_name", "Ada")
    fields.setdefault("last_name", f"Number{n}")
    return User.objects.create(**fields)


def make_post(*, author: User | None = None, author_id: int | None = None, **fields: Any) -> Post:
    n = next(_seq)
    if author_id is None:
        author_id = (author or make_user()).pk
    fields.setdefault("title", f"Post {n}")
    fields.setdefault("content", f"Content of post {n}")
    return Post.objects.create(author_id=author_id, **fields)


def make_profile(*, user_id: int, **fields: Any) -> UserProfile:
    fields.setdefault("bio", "Hello")
    return UserProfile.objects.create(user_id=user_id, **fields)


def make_event(**fields: Any) -> AnalyticsEvent:
    fields.setdefault("event_type", "page_view")
    fields.setdefault("session_id", f"s{next(_seq)}")
    fields.setdefault("data", {})
    return AnalyticsEvent.objects.create(**fields)


def make_customer(**fields: Any) -> LegacyCustomer:
    """Insert a legacy customer (the table is read-only for the app; tests allow writes briefly)."""
    from routers.state import allow_legacy_writes

    n = next(_seq)
    fields.setdefault("customer_name", f"Customer {n}")
    fields.setdefault("customer_email", f"customer{n}@example.com")
    fields.setdefault("created_date", timezone.now() - dt.timedelta(days=n % 30))
    with allow_legacy_writes():
        return LegacyCustomer.objects.create(**fields)


def make_cache_entry(**fields: Any) -> CacheEntry:
    n = next(_seq)
    fields.setdefault("key", f"key:{n}")
    fields.setdefault("value", "{}")
    return CacheEntry.objects.create(**fields)


#: What ``api_client(staff=False)`` gives: what every non-staff token could do before scopes
#: existed (and what migration tokens/0002 gives such tokens): reads with personal data, posts,
#: events and registrations, unbound (a trusted backend). No users:write, legacy:write, admin.
NON_STAFF_SCOPES: tuple[str, ...] = (
    scope_names.READ,
    scope_names.POSTS_WRITE,
    scope_names.EVENTS_WRITE,
    scope_names.REGISTRATIONS_WRITE,
    scope_names.PII_READ,
)


class IssuedTestToken:
    """A token issued for a test: ``key`` (the only place the key exists), ``token`` (its row)."""

    def __init__(self, issued: IssuedToken) -> None:
        self.key = issued.key
        self.token = issued.token
        self.prefix = issued.token.prefix

    def delete(self) -> None:
        self.token.delete()


def make_account(
    *,
    staff: bool = False,
    username: str | None = None,
    scopes: tuple[str, ...] | list[str] | None = None,
    user_id: int | None = None,
    expires_in: dt.timedelta | None = None,
) -> tuple[Any, IssuedTestToken]:
    """A Django auth account (on default) with a new API token.

    ``staff``: a staff account, token with every scope. Otherwise ``scopes`` (default
    :data:`NON_STAFF_SCOPES`); a scope that needs a staff account makes the account staff.
    ``user_id`` binds the token to that users_db user.
    """
    username = username or f"account{next(_seq)}"
    if staff and scopes is None:
        issued = token_create(username=username, staff=True, bound_user_id=user_id, expires_in=expires_in)
    else:
        granted = tuple(scopes) if scopes is not None else NON_STAFF_SCOPES
        if staff or set(granted) & scope_names.STAFF_ONLY:
            account, _ = get_user_model().objects.get_or_create(username=username, defaults={"is_staff": True})
            if not account.is_staff:
                account.is_staff = True
                account.save(update_fields=["is_staff"])
        issued = token_create(username=username, scopes=granted, bound_user_id=user_id, expires_in=expires_in)
    return issued.token.account, IssuedTestToken(issued)


def api_client(
    *,
    staff: bool = False,
    token: IssuedTestToken | None = None,
    scopes: tuple[str, ...] | list[str] | None = None,
    user_id: int | None = None,
    expires_in: dt.timedelta | None = None,
) -> APIClient:
    """An API client with a fresh token: ``staff=True`` every scope; otherwise ``scopes`` (default
    :data:`NON_STAFF_SCOPES`: read, posts:write, events:write, registrations:write,
    pii:read), bound to
    ``user_id`` when given."""
    if token is None:
        _, token = make_account(staff=staff, scopes=scopes, user_id=user_id, expires_in=expires_in)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@contextlib.contextmanager
def djangos_pool(alias: str, max_size: int) -> Iterator[Any]:
    """``alias`` on Django's own pool (what ``DB_POOL=1`` configures) for the block, then back to
    the configured connection handling; yields the connection wrapper."""
    from django.db import connections

    connection = connections[alias]
    connection.close()
    saved = (dict(connection.settings_dict["OPTIONS"]), connection.settings_dict["CONN_MAX_AGE"])
    connection.settings_dict["OPTIONS"]["pool"] = {"min_size": 1, "max_size": max_size, "timeout": 2.0}
    connection.settings_dict["CONN_MAX_AGE"] = 0  # Django's pool refuses persistent connections
    try:
        yield connection
    finally:
        connection.close()
        connection.close_pool()
        connection.settings_dict["OPTIONS"], connection.settings_dict["CONN_MAX_AGE"] = saved
