"""Recent users' activity and the new-user report: one query per database, joins by id, faults."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core import aliases
from core.errors import NotFound, SourceUnavailable
from core.services.activity import recent_users_activity
from core.services.reports import new_user_activity
from core.users.models import User
from tests.factories import make_event, make_post, make_user
from tests.services.faults import alias_down, wait_for_fanout_idle

DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS]
#: Writing posts clears their author's cached stats (on the cache's database) after commit.
WRITE_DBS = [*DBS, aliases.CACHE]


@pytest.fixture(autouse=True)
def _idle_pool():  # type: ignore[no-untyped-def]
    yield
    wait_for_fanout_idle()


def joined(days_ago: float) -> User:
    user = make_user()
    User.objects.filter(pk=user.pk).update(created_at=timezone.now() - dt.timedelta(days=days_ago))
    return user


@pytest.mark.parametrize("size", [2, 20])
@pytest.mark.django_db(transaction=True, databases=WRITE_DBS)
def test_activity_reads_each_database_once(size: int, count_queries) -> None:  # type: ignore[no-untyped-def]
    for i in range(size):
        user = joined(1 + i % 20)
        for _ in range(i % 4):
            make_post(author=user)
        make_event(user_id=user.pk)
    with count_queries() as n:
        answer = recent_users_activity(days=30, page_size=200)
    assert n == {aliases.USERS: 1, aliases.DEFAULT: 1, aliases.ANALYTICS: 1}
    assert answer["count"] == size and len(answer["results"]) == size
    assert sum(u["post_count"] for u in answer["results"]) == sum(i % 4 for i in range(size))


@pytest.mark.django_db(transaction=True, databases=WRITE_DBS)
def test_activity_joins_users_without_posts_or_events() -> None:
    active, idle = joined(1), joined(2)
    joined(45)
    posts = [make_post(author=active) for _ in range(6)]
    make_event(user_id=active.pk, event_type="click")
    make_event(user_id=active.pk, event_type="login")
    answer = recent_users_activity(days=30)
    first, second = answer["results"]
    assert first["id"] == active.pk and first["post_count"] == 6
    newest = sorted(posts, key=lambda p: (p.created_at, p.pk), reverse=True)[:5]
    assert [p["id"] for p in first["posts"]] == [p.pk for p in newest]
    assert first["events"] == {"total": 2, "by_type": {"click": 1, "login": 1}}
    assert second["id"] == idle.pk
    assert (second["post_count"], second["posts"], second["events"]) == (0, [], {"total": 0, "by_type": {}})
    with pytest.raises(NotFound):
        recent_users_activity(days=30, page=2, page_size=2)


@pytest.mark.django_db(transaction=True, databases=WRITE_DBS)
def test_activity_degrades_without_analytics_and_fails_without_users(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.ANALYTICS: 0.5, aliases.USERS: 0.5}
    user = joined(1)
    make_post(author=user)
    with alias_down(aliases.ANALYTICS):
        answer = recent_users_activity(days=30)
    assert answer["degraded"] == [aliases.ANALYTICS]
    assert answer["results"][0]["events"] is None and answer["results"][0]["post_count"] == 1
    with alias_down(aliases.USERS), pytest.raises(SourceUnavailable):
        recent_users_activity(days=30)


@pytest.mark.parametrize("size", [2, 20])
@pytest.mark.django_db(transaction=True, databases=[aliases.USERS, aliases.ANALYTICS])
def test_report_reads_users_then_analytics_once(size: int, count_queries) -> None:  # type: ignore[no-untyped-def]
    users = [joined(i % 10) for i in range(size)]
    for user in users:
        make_event(user_id=user.pk)
    with count_queries() as n:
        report = new_user_activity()
    assert n == {aliases.USERS: 1, aliases.ANALYTICS: 1}
    recent = [u for i, u in enumerate(users) if i % 10 < 7]
    assert report["total_users"] == len(recent)
    assert report["total_events"] == len(recent)


@pytest.mark.django_db(transaction=True, databases=[aliases.USERS, aliases.ANALYTICS])
def test_report_counts_only_the_window_and_keeps_silent_users(settings) -> None:  # type: ignore[no-untyped-def]
    fresh, silent, old = joined(1), joined(3), joined(9)
    make_event(user_id=fresh.pk)
    make_event(user_id=fresh.pk, timestamp=timezone.now() - dt.timedelta(days=8))
    make_event(user_id=old.pk)
    report = new_user_activity()
    assert [(u["id"], u["event_count"]) for u in report["users"]] == [(fresh.pk, 1), (silent.pk, 0)]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.ANALYTICS: 0.5}
    with alias_down(aliases.ANALYTICS):
        degraded = new_user_activity()
    assert degraded["degraded"] == [aliases.ANALYTICS]
    assert [u["event_count"] for u in degraded["users"]] == [None, None] and degraded["total_events"] is None
