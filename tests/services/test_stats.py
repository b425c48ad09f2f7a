"""Cross-database stats: query counts, conditional aggregation windows, top authors, caching."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.cache.models import CacheEntry
from core.legacy.models import LegacyCustomer
from core.services.stats import compute_stats, stats
from core.users.models import User
from tests.factories import make_cache_entry, make_customer, make_event, make_post, make_user
from tests.services.faults import alias_down, wait_for_fanout_idle

DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY, aliases.CACHE]
#: Computing: one query per database, plus the in_bulk of the top authors' usernames on users_db.
COMPUTE = {aliases.USERS: 2, aliases.DEFAULT: 1, aliases.ANALYTICS: 1, aliases.LEGACY: 1, aliases.CACHE: 1}
#: Django's DatabaseCache on SQLite: get = 1 query; set = count (culling), BEGIN IMMEDIATE, select, insert.
CACHE_GET, CACHE_SET = 1, 4

pytestmark = pytest.mark.usefixtures("clear_cache")


@pytest.fixture(autouse=True)
def _idle_pool():  # type: ignore[no-untyped-def]
    yield
    wait_for_fanout_idle()


@pytest.mark.parametrize("authors", [2, 20])
@pytest.mark.django_db(transaction=True, databases=DBS)
def test_stats_query_counts_do_not_grow_with_data(authors: int, count_queries) -> None:  # type: ignore[no-untyped-def]
    for i in range(authors):
        user = make_user()
        for _ in range(i % 3 + 1):
            make_post(author=user)
        make_event(user_id=user.pk)
    make_customer()
    with count_queries() as n:
        compute_stats()
    assert n == COMPUTE


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_stats_figures_join_authors_by_id_and_count_windows(count_queries) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    ada, bob, gone, quiet = make_user(), make_user(), make_user(), make_user()
    for author, n in ((ada, 3), (gone, 2), (bob, 1)):
        for _ in range(n):
            make_post(author=author)
    gone_id = gone.pk
    User.objects.filter(pk=gone_id).delete()  # posts stay on default: their author is gone
    for age in (dt.timedelta(hours=1), dt.timedelta(days=3), dt.timedelta(days=20), dt.timedelta(days=40)):
        make_event(event_type="page_view", timestamp=now - age, user_id=ada.pk)
    make_event(event_type="click", timestamp=now - dt.timedelta(days=2), user_id=None)
    make_customer()
    make_customer()
    make_cache_entry()

    figures, got = compute_stats()

    assert got.degraded == []
    assert figures["top_authors"] == [
        {"author_id": ada.pk, "username": ada.username, "post_count": 3},
        {"author_id": gone_id, "username": None, "post_count": 2},
        {"author_id": bob.pk, "username": bob.username, "post_count": 1},
    ]
    assert quiet.pk not in {a["author_id"] for a in figures["top_authors"]}
    assert figures["users"] == {"total": 3}
    assert figures["posts"] == {"total": 6, "authors": 3}
    events = figures["events"]
    assert events["by_type"]["page_view"] == {"total": 4, "last_24h": 1, "last_7d": 2, "last_30d": 3}
    assert events["by_type"]["click"] == {"total": 1, "last_24h": 0, "last_7d": 1, "last_30d": 1}
    assert (events["total"], events["last_24h"], events["last_7d"], events["last_30d"]) == (5, 1, 3, 4)
    assert figures["legacy_customers"] == {"total": LegacyCustomer.objects.count()}
    assert figures["rows"] == {
        aliases.DEFAULT: Post.objects.count(),
        aliases.USERS: User.objects.count(),
        aliases.ANALYTICS: AnalyticsEvent.objects.count(),
        aliases.LEGACY: LegacyCustomer.objects.count(),
        aliases.CACHE: CacheEntry.objects.count(),
    }


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_no_posts_means_no_authors_and_no_username_lookup(count_queries) -> None:  # type: ignore[no-untyped-def]
    make_user()
    with count_queries() as n:
        figures, _ = compute_stats()
    assert figures["top_authors"] == [] and figures["posts"] == {"total": 0, "authors": 0}
    assert n == {**COMPUTE, aliases.USERS: 1}


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_stats_are_cached_for_the_configured_seconds(settings, count_queries) -> None:  # type: ignore[no-untyped-def]
    settings.STATS_CACHE_SECONDS = 60
    make_post(author=make_user())
    with count_queries() as first_n:
        first = stats()
    make_post(author=make_user())
    with count_queries() as second_n:
        second = stats()
    assert first["cached"] is False and second["cached"] is True
    assert first_n == {**COMPUTE, aliases.CACHE: CACHE_GET + COMPUTE[aliases.CACHE] + CACHE_SET}
    assert second_n == {aliases.CACHE: CACHE_GET}
    assert second["posts"] == first["posts"] == {"total": 1, "authors": 1}
    assert list(second["sources"]) == [aliases.CACHE]


@pytest.mark.django_db(transaction=True, databases=DBS)
def test_legacy_down_degrades_and_is_not_cached(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STATS_CACHE_SECONDS = 60
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.LEGACY: 0.5}
    make_post(author=make_user())
    with alias_down(aliases.LEGACY):
        answer = stats()
    assert answer["degraded"] == [aliases.LEGACY]
    assert answer["legacy_customers"] is None and answer["rows"][aliases.LEGACY] is None
    assert answer["posts"] == {"total": 1, "authors": 1}
    again = stats()
    assert again["cached"] is False and again["degraded"] == []
