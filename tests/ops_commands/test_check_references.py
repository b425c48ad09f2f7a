"""``manage.py check_references [--fix] [--batch-size N]``: cross-database orphans of every kind."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.services.references import check_references
from core.users.models import User
from tests.factories import make_cache_entry, make_event, make_post, make_profile, make_user

DBS = ["default", "users_db", "analytics_db", "cache_db"]
pytestmark = pytest.mark.django_db(databases=DBS)


def seed_orphans() -> dict[str, int]:
    """Live rows for two users, and orphans naming ids that do not exist on users_db."""
    alive = [make_user(), make_user()]
    gone = max(u.pk for u in alive) + 1000
    for user in alive:
        make_post(author=user)
        make_profile(user_id=user.pk)
        make_event(user_id=user.pk)
        make_cache_entry(key=f"user:{user.pk}:summary")
    for n in range(7):
        make_post(author_id=gone + n % 3)
    make_profile(user_id=gone)
    make_profile(user_id=gone + 1)
    for _ in range(4):
        make_event(user_id=gone)
    make_event(user_id=None)
    make_cache_entry(key=f"user:{gone}:summary")
    make_cache_entry(key=f"user:{gone}:stats")
    make_cache_entry(key="user:notanid:x")
    make_cache_entry(key="other:1")
    return {"posts": 7, "profiles": 2, "events": 4, "cache": 2}


def run(*args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("check_references", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc.returncode
    return out.getvalue(), 0


@override_settings(USER_DELETION_ANALYTICS="delete")
def test_finds_every_kind_then_fix_removes_them() -> None:
    expected = seed_orphans()
    output, status = run("--batch-size", "3")
    assert status == 1
    for kind, count in expected.items():
        assert f"{kind}: {count} orphans of " in output, output
    assert "posts: batch 1: 3 scanned" in output  # progress lines, keyset batches of 3
    assert "orphans: 15 found, 15 left" in output
    assert Post.objects.count() == 9  # nothing removed without --fix

    output, status = run("--fix", "--batch-size", "3")
    assert status == 0, output
    assert "posts: 7 orphans of 9 scanned, 7 removed" in output
    assert "orphans: 15 found, 0 left" in output
    users = set(User.objects.values_list("pk", flat=True))
    assert set(Post.objects.values_list("author_id", flat=True)) == users
    assert set(UserProfile.objects.values_list("user_id", flat=True)) == users
    assert set(AnalyticsEvent.objects.exclude(user_id=None).values_list("user_id", flat=True)) == users
    assert AnalyticsEvent.objects.filter(user_id=None).count() == 1
    assert sorted(CacheEntry.objects.values_list("key", flat=True)) == sorted(
        [f"user:{u}:summary" for u in users] + ["user:notanid:x", "other:1"]
    )
    output, status = run()
    assert status == 0 and "orphans: 0 found, 0 left" in output


def test_in_anonymise_mode_events_are_not_checked() -> None:
    seed_orphans()
    output, status = run("--kind", "events")
    assert status == 0 and "events: skipped" in output


def test_one_query_per_batch_per_database() -> None:
    """Posts in batches of 4: per batch one keyset SELECT on default and one id lookup on users_db
    (plus, only for a batch that has candidates, the re-read of those candidates)."""
    user = make_user()
    for _ in range(10):
        make_post(author=user)
    with (
        CaptureQueriesContext(connections[aliases.DEFAULT]) as on_default,
        CaptureQueriesContext(connections[aliases.USERS]) as on_users,
    ):
        (report,) = check_references(batch_size=4, kinds=["posts"])
    assert (report.scanned, report.batches, report.orphans) == (10, 3, 0)
    assert len(on_default.captured_queries) == 3
    assert len(on_users.captured_queries) == 3
    keyset = on_default.captured_queries[1]["sql"]
    assert "ORDER BY" in keyset and ">" in keyset and "LIMIT 4" in keyset


def test_bad_batch_size_is_refused() -> None:
    with pytest.raises(CommandError):
        call_command("check_references", "--batch-size", "0", stdout=io.StringIO())
