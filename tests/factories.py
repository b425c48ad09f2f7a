"""Typed factories for tests. They never name a database: the routers decide where rows go."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.legacy.models import LegacyCustomer
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


def make_account(*, staff: bool = False, username: str | None = None) -> tuple[Any, Token]:
    """A Django auth account (on default) with an API token."""
    account = get_user_model().objects.create_user(
        username=username or f"account{next(_seq)}", password=None, is_staff=staff
    )
    token, _ = Token.objects.get_or_create(user=account)
    return account, token


def api_client(*, staff: bool = False, token: Token | None = None) -> APIClient:
    """An API client authenticated with a fresh token (staff or not)."""
    if token is None:
        _, token = make_account(staff=staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
