"""The user dashboard: one query per database, joins by id, degradation with real faults."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.errors import NotFound, SourceUnavailable
from core.services.dashboard import user_dashboard
from core.services.user_stats import user_stats
from tests.factories import make_event, make_post, make_user
from tests.services.faults import Stopwatch, alias_down, table_locked, wait_for_fanout_idle

DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]
ONE_EACH = {aliases.USERS: 1, aliases.DEFAULT: 1, aliases.ANALYTICS: 1, aliases.CACHE: 1}

pytestmark = pytest.mark.usefixtures("clear_cache")


@pytest.fixture(autouse=True)
def _idle_pool():  # type: ignore[no-untyped-def]
    yield
    wait_for_fanout_idle()


def seed_user(posts: int, events: dict[str, int]):  # type: ignore[no-untyped-def]
    user = make_user()
    for _ in range(posts):
        make_post(author=user)
    for event_type, n in events.items():
        for _ in range(n):
            make_event(user_id=user.pk, event_type=event_type)
    return user


@pytest.mark.parametrize("others", [2, 20])
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_dashboard_reads_each_database_once_however_much_data(others: int, count_queries) -> None:  # type: ignore[no-untyped-def]
    for _ in range(others):
        seed_user(posts=3, events={"page_view": 2})
    user = seed_user(posts=12, events={"page_view": 3, "click": 1})
    make_event(user_id=user.pk, event_type="click", timestamp=timezone.now() - dt.timedelta(days=40))

    with count_queries() as n:
        answer = user_dashboard(user_id=user.pk)

    assert n == ONE_EACH
    assert answer["degraded"] == []
    assert set(answer["sources"]) == set(ONE_EACH)
    assert answer["user"]["id"] == user.pk and answer["user"]["username"] == user.username
    newest = Post.objects.filter(author_id=user.pk).order_by("-created_at", "-id").values_list("id", flat=True)[:10]
    assert [p["id"] for p in answer["recent_posts"]] == list(newest)
    # The 40-day-old click is outside the 30 days.
    assert answer["analytics"]["by_type"] == {"click": 1, "page_view": 3}
    assert answer["analytics"]["total"] == 4
    assert answer["cached_stats"] is None


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_a_user_without_posts_or_events_gets_empty_parts_not_nulls() -> None:
    user = make_user()
    make_post(author=make_user())
    make_event(user_id=user.pk + 1000)
    answer = user_dashboard(user_id=user.pk)
    assert answer["recent_posts"] == []
    assert answer["analytics"]["by_type"] == {} and answer["analytics"]["total"] == 0
    assert answer["degraded"] == []


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_the_cached_stats_entry_appears_once_user_stats_ran(count_queries) -> None:  # type: ignore[no-untyped-def]
    user = seed_user(posts=2, events={"login": 1})
    stats = user_stats(user_id=user.pk)
    with count_queries() as n:
        answer = user_dashboard(user_id=user.pk)
    assert n == ONE_EACH
    assert answer["cached_stats"] == {**stats["stats"], "computed_at": stats["computed_at"]}
    assert answer["cached_stats"]["post_count"] == 2


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_unknown_user_is_not_found() -> None:
    make_user()
    with pytest.raises(NotFound):
        user_dashboard(user_id=987654321)
    with pytest.raises(NotFound):
        user_dashboard(user_id=2**70)


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_analytics_locked_past_its_budget_degrades_only_analytics(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.ANALYTICS: 0.5}
    user = seed_user(posts=2, events={"page_view": 1})
    with table_locked(aliases.ANALYTICS, AnalyticsEvent._meta.db_table), Stopwatch() as watch:
        answer = user_dashboard(user_id=user.pk)
    assert watch.seconds < 0.5 + 0.5
    assert answer["degraded"] == [aliases.ANALYTICS]
    assert answer["analytics"] is None
    assert len(answer["recent_posts"]) == 2 and answer["user"]["id"] == user.pk
    assert answer["sources"][aliases.ANALYTICS] >= 450


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_analytics_down_degrades_within_budget(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.ANALYTICS: 0.5}
    settings.FANOUT_GRACE_SECONDS = 0.2
    user = seed_user(posts=1, events={})
    with alias_down(aliases.ANALYTICS), Stopwatch() as watch:
        answer = user_dashboard(user_id=user.pk)
    assert watch.seconds < 0.5 + 0.5
    assert answer["degraded"] == [aliases.ANALYTICS] and answer["analytics"] is None
    assert len(answer["recent_posts"]) == 1


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_users_db_down_is_source_unavailable(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.USERS: 0.5}
    settings.FANOUT_GRACE_SECONDS = 0.2
    user = seed_user(posts=1, events={})
    with alias_down(aliases.USERS), Stopwatch() as watch, pytest.raises(SourceUnavailable) as raised:
        user_dashboard(user_id=user.pk)
    assert raised.value.alias == aliases.USERS
    assert watch.seconds < 1.0


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_the_event_counts_are_an_index_only_scan_on_postgresql() -> None:
    """The dashboard's counts read the per-user daily rollup by its key, and the raw rows of the
    window's first, partial day from the (user_id, timestamp) index, which covers event_type: an
    index-only scan (on each partition it reaches, named after the partition)."""
    from django.db import connections

    from core.analytics.selectors import counts_query
    from core.services import dashboard

    connection = connections[aliases.ANALYTICS]
    if connection.vendor != "postgresql":
        pytest.skip("covering indexes are PostgreSQL's")
    user = seed_user(posts=0, events={"page_view": 3, "click": 2})
    since = timezone.now() - dt.timedelta(days=dashboard.ANALYTICS_DAYS)
    with connection.cursor() as cursor:
        # Other users' events, so that the planner sees the user's own as the few they are.
        cursor.execute(
            'INSERT INTO analytics_event (event_type, user_id, session_id, "timestamp", data) '
            "SELECT 'type_' || (i %% 7), %s + (i %% 500), '', now() - (i %% 60) * interval '1 day', '{}' "
            "FROM generate_series(1, 20000) AS i",
            [user.pk + 1],
        )
        cursor.execute("VACUUM ANALYZE analytics_event")
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_bitmapscan = off")
        try:
            sql, params = counts_query(aliases.ANALYTICS, {"w": (since, None)}, user_id=user.pk, labelled=False)
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_bitmapscan")
    assert re.search(r"Index Only Scan using analytics_event_\w*user_id_timestamp", plan), plan
    assert "analytics_user_daily_key" in plan, plan
