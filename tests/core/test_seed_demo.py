"""``manage.py seed_demo`` fills every database in bulk and can be run again."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.legacy.models import LegacyCustomer
from core.tokens import scopes as scope_names
from core.tokens.models import ApiToken
from core.tokens.services import key_digest
from core.users.models import User

pytestmark = pytest.mark.django_db(databases="__all__")
ARGS = [
    "--users",
    "30",
    "--posts-per-user",
    "3",
    "--events",
    "900",
    "--customers",
    "25",
    "--cache-entries",
    "10",
    "--batch-size",
    "200",
]


def _counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "posts": Post.objects.count(),
        "profiles": UserProfile.objects.count(),
        "events": AnalyticsEvent.objects.count(),
        "customers": LegacyCustomer.objects.count(),
        "cache": CacheEntry.objects.count(),
    }


def test_seed_demo_fills_every_database_and_is_repeatable(queries):
    out = io.StringIO()
    with queries(aliases.ANALYTICS) as analytics_queries:
        call_command("seed_demo", *ARGS, stdout=out)
    first = _counts()
    assert first == {"users": 30, "posts": 90, "profiles": 30, "events": 900, "customers": 25, "cache": 10}
    # bulk: a handful of statements for 900 events, not one per event
    assert len(analytics_queries) < 900 // 20
    text = out.getvalue()
    assert "analytics_db: 900/900 events written" in text
    token = text.split("Demo staff API token (user demo_admin): ")[1].split()[0]
    issued = ApiToken.objects.get(digest=key_digest(token))  # stored hashed
    assert issued.account.is_staff and issued.scope_set == set(scope_names.ALL)

    events = AnalyticsEvent.objects.all()
    assert events.filter(user_id__isnull=False).count() > 700
    assert len(set(events.values_list("event_type", flat=True))) >= 5
    author_ids = set(Post.objects.values_list("author_id", flat=True))
    assert author_ids == set(User.objects.values_list("id", flat=True))

    out2 = io.StringIO()
    call_command("seed_demo", *ARGS, stdout=out2)
    assert _counts() == first
    # Only a hash is stored, so a reseed cannot print the old key again: it issues a new staff token.
    again = out2.getvalue().split("demo_admin): ")[1].split()[0]
    assert again != token and ApiToken.objects.get(digest=key_digest(again)).account == issued.account


def test_seed_demo_leaves_other_rows_alone():
    User.objects.create(username="real_person", email="real@example.com")
    call_command("seed_demo", *ARGS, stdout=io.StringIO())
    call_command("seed_demo", *ARGS, stdout=io.StringIO())
    assert User.objects.filter(username="real_person").exists()
    assert User.objects.count() == 31


def test_seed_demo_refuses_negative_sizes():
    with pytest.raises(CommandError, match="--users must not be negative"):
        call_command("seed_demo", "--users", "-1", stdout=io.StringIO())
