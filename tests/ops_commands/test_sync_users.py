"""``manage.py sync_users``: bulk upserts, a fixed number of queries per batch, idempotent."""

from __future__ import annotations

import datetime as dt
import json
import math
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.cache.models import CacheEntry
from core.services.sync import summary_key
from core.users.models import User

DBS = [aliases.USERS, aliases.DEFAULT, aliases.CACHE, aliases.ANALYTICS]
UPSERT_FIELDS = [CacheEntry._meta.get_field(name) for name in ("key", "value", "expires_at", "created_at")]
EVENT_FIELDS = [f for f in AnalyticsEvent._meta.concrete_fields if not f.primary_key]
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def statements(captured) -> int:
    return sum(1 for q in captured.captured_queries if not q["sql"].upper().startswith(CONTROL))


def bulk_statements(alias: str, fields: list, sizes: list[int]) -> int:
    """Statements a bulk write of batches of ``sizes`` rows takes on ``alias`` (the backend's cap per statement)."""
    per_statement = connections[alias].ops.bulk_batch_size(fields, [None] * max(sizes)) or max(sizes)
    return sum(math.ceil(size / per_statement) for size in sizes)


def seed_users(n: int, *, start: int = 0) -> list[User]:
    User.objects.bulk_create(
        [User(username=f"sync{start + i}", email=f"sync{start + i}@example.com") for i in range(n)], batch_size=1000
    )
    return list(User.objects.filter(username__startswith="sync").order_by("pk"))


def run(*args: str) -> str:
    out = StringIO()
    call_command("sync_users", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(databases=DBS)
@pytest.mark.parametrize("n,batches", [(1200, 3), (2400, 5)])
def test_queries_per_alias_grow_with_batches_not_rows(queries, n, batches):
    seed_users(n)
    with (
        queries(aliases.USERS) as on_users,
        queries(aliases.DEFAULT) as on_default,
        queries(aliases.CACHE) as on_cache,
        queries(aliases.ANALYTICS) as on_analytics,
    ):
        output = run("--since", "1h", "--batch-size", "500")
    # one SELECT, one grouped post count, one upsert, one bulk insert per batch
    # per batch: the users' SELECT and the fence's locking SELECT (core.users.fence)
    assert statements(on_users) == 2 * batches
    assert statements(on_default) == batches
    # one upsert (cache_db) and one insert (analytics_db) per batch, split only where the backend caps
    # the parameters of a statement (SQLite: 999, so 249 cache rows or 199 events); never one per user
    sizes = [500] * (n // 500) + ([n % 500] if n % 500 else [])
    assert statements(on_cache) == bulk_statements(aliases.CACHE, UPSERT_FIELDS, sizes)
    assert statements(on_analytics) == bulk_statements(aliases.ANALYTICS, EVENT_FIELDS, sizes)
    assert f"synced {n} users in {batches} batches" in output
    assert "batch 1: 500 users synced (500 so far" in output
    assert CacheEntry.objects.count() == n
    assert AnalyticsEvent.objects.filter(event_type="user_synced").count() == n


@pytest.mark.django_db(databases=DBS)
def test_sync_writes_a_summary_per_user_and_is_idempotent():
    users = seed_users(30)
    Post.objects.bulk_create([Post(title="t", author_id=users[0].pk), Post(title="u", author_id=users[0].pk)])
    run("--batch-size", "7")
    first = dict(CacheEntry.objects.values_list("key", "value"))
    User.objects.filter(pk=users[1].pk).update(first_name="Changed", updated_at=timezone.now())
    run("--batch-size", "7")
    second = dict(CacheEntry.objects.values_list("key", "value"))
    assert set(second) == set(first) == {summary_key(u.pk) for u in users}  # upserted, not duplicated
    summary = json.loads(second[summary_key(users[0].pk)])
    assert (summary["username"], summary["post_count"]) == (users[0].username, 2)
    assert json.loads(second[summary_key(users[1].pk)])["first_name"] == "Changed"
    assert {k: v for k, v in second.items() if k != summary_key(users[1].pk)} == {
        k: v for k, v in first.items() if k != summary_key(users[1].pk)
    }
    sync_ids = set(AnalyticsEvent.objects.filter(event_type="user_synced").values_list("data__sync_id", flat=True))
    assert len(sync_ids) == 2  # each run recorded once per user, with its own sync id
    assert AnalyticsEvent.objects.filter(event_type="user_synced").count() == 60


@pytest.mark.django_db(databases=DBS)
def test_window_and_ids():
    users = seed_users(5)
    User.objects.filter(pk__in=[users[0].pk, users[1].pk]).update(updated_at=timezone.now() - dt.timedelta(hours=3))
    output = run("--since", "1h")
    assert "synced 3 users" in output
    assert not CacheEntry.objects.filter(key=summary_key(users[0].pk)).exists()
    output = run("--ids", f"{users[0].pk},{users[1].pk},987654")
    assert "synced 2 users" in output and "not found on users_db: 987654" in output
    assert CacheEntry.objects.filter(key=summary_key(users[0].pk)).exists()


@pytest.mark.django_db(databases=DBS)
@pytest.mark.parametrize(
    "args",
    [["--ids", "1,x"], ["--ids", "0"], ["--since", "soon"], ["--batch-size", "0"], ["--ids", "1", "--since", "1h"]],
)
def test_bad_arguments_are_refused(args):
    with pytest.raises(CommandError):
        run(*args)
