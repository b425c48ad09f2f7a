"""The aggregate endpoints over HTTP: status codes, shapes, query counts per alias, real faults."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.utils import timezone

from api.aggregates import (
    AggregatesActivityPageSerializer,
    AggregatesDashboardSerializer,
    AggregatesNewUserActivitySerializer,
    AggregatesStatsSerializer,
    AggregatesUserStatsSerializer,
)
from core import aliases, instrumentation
from core.analytics.models import AnalyticsEvent
from core.users.models import User
from tests.factories import api_client, make_customer, make_event, make_post, make_user
from tests.services.faults import Stopwatch, alias_down, table_locked, wait_for_fanout_idle

ALL = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY, aliases.CACHE]
USER_DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]
#: The token lookup and its last use stamped (two queries on default on the token's first
#: request; then it is remembered for API_TOKEN_CACHE_SECONDS, see api/authentication.py).
AUTH = 2


class _Recorder:
    """Counts queries per alias on every thread (the request's and the fan-out's) while active."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] | None = None

    def __call__(self, alias: str, seconds: float, failed: bool) -> None:
        with self.lock:
            if self.counts is not None:
                self.counts[alias] = self.counts.get(alias, 0) + 1


_recorder = _Recorder()
instrumentation.add_listener(_recorder)


@contextlib.contextmanager
def counting() -> Iterator[dict[str, int]]:
    counts: dict[str, int] = {}
    _recorder.counts = counts
    try:
        yield counts
    finally:
        _recorder.counts = None


@pytest.fixture(autouse=True)
def _clean(request, django_db_blocker):  # type: ignore[no-untyped-def]
    """An empty cache for tests that use it (its table is not flushed between tests); no busy worker."""
    marker = request.node.get_closest_marker("django_db")
    uses_cache = marker is not None and aliases.CACHE in marker.kwargs.get("databases", ())
    if uses_cache:
        with django_db_blocker.unblock():
            cache.clear()
    yield
    wait_for_fanout_idle()
    if uses_cache:
        with django_db_blocker.unblock():
            cache.clear()


def valid(serializer_class, data) -> bool:  # type: ignore[no-untyped-def]
    """The answer has the documented shape (the schema's serializer accepts it)."""
    serializer = serializer_class(data=data)
    assert serializer.is_valid(), serializer.errors
    return True


# --- dashboard -------------------------------------------------------------------------------


@pytest.mark.parametrize("others", [2, 20])
@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_dashboard_answers_with_one_query_per_database(others: int) -> None:
    client = api_client()
    for _ in range(others):
        make_post(author=make_user())
    user = make_user()
    for _ in range(11):
        make_post(author=user)
    make_event(user_id=user.pk, event_type="login")
    with counting() as n:
        response = client.get(f"/api/v1/users/{user.pk}/dashboard/")
    assert response.status_code == 200
    body = response.json()
    assert n == {aliases.DEFAULT: AUTH + 1, aliases.USERS: 1, aliases.ANALYTICS: 1, aliases.CACHE: 1}
    assert valid(AggregatesDashboardSerializer, body)
    assert body["user"]["id"] == user.pk and len(body["recent_posts"]) == 10
    assert body["analytics"]["by_type"] == {"login": 1}
    assert body["degraded"] == []
    assert set(body["sources"]) == {aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE}


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_dashboard_needs_a_token_and_a_known_user() -> None:
    user = make_user()
    assert api_client().get("/api/v1/users/999999/dashboard/").status_code == 404
    assert api_client().get(f"/api/v1/users/{2**64}/dashboard/").status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/v1/users/{user.pk}/dashboard/").status_code == 401


@pytest.mark.real_engines
@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_dashboard_with_analytics_locked_answers_200_degraded_within_budget(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.ANALYTICS: 0.5}
    client = api_client()
    user = make_user()
    make_post(author=user)
    with table_locked(aliases.ANALYTICS, AnalyticsEvent._meta.db_table), Stopwatch() as watch:
        response = client.get(f"/api/v1/users/{user.pk}/dashboard/")
    assert response.status_code == 200
    assert watch.seconds < 0.5 + 0.5
    body = response.json()
    assert body["degraded"] == [aliases.ANALYTICS] and body["analytics"] is None
    assert len(body["recent_posts"]) == 1
    assert valid(AggregatesDashboardSerializer, body)


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_dashboard_with_analytics_down_answers_200_degraded(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.ANALYTICS: 0.5}
    settings.FANOUT_GRACE_SECONDS = 0.2
    client = api_client()
    user = make_user()
    with alias_down(aliases.ANALYTICS), Stopwatch() as watch:
        response = client.get(f"/api/v1/users/{user.pk}/dashboard/")
    assert response.status_code == 200 and watch.seconds < 0.5 + 0.5
    assert response.json()["degraded"] == [aliases.ANALYTICS]


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_dashboard_with_users_db_down_is_503(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.USERS: 0.5}
    settings.FANOUT_GRACE_SECONDS = 0.2
    client = api_client()
    user = make_user()
    with alias_down(aliases.USERS), Stopwatch() as watch:
        response = client.get(f"/api/v1/users/{user.pk}/dashboard/")
    assert response.status_code == 503 and watch.seconds < 0.5 + 0.5


# --- stats -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases=ALL)
def test_stats_counts_and_cache(settings) -> None:  # type: ignore[no-untyped-def]
    settings.STATS_CACHE_SECONDS = 60
    client = api_client()
    for _ in range(3):
        make_post(author=make_user())
    make_customer()
    with counting() as miss:
        first = client.get("/api/v1/stats/")
    with counting() as hit:
        second = client.get("/api/v1/stats/")
    assert first.status_code == second.status_code == 200
    assert miss == {
        aliases.DEFAULT: AUTH + 1,
        aliases.USERS: 2,
        aliases.ANALYTICS: 1,
        aliases.LEGACY: 1,
        aliases.CACHE: 1 + 1 + 4,  # cache get, cache entries, cache set
    }
    assert hit == {aliases.CACHE: 1}  # the token is remembered
    assert first.json()["cached"] is False and second.json()["cached"] is True
    assert valid(AggregatesStatsSerializer, first.json())
    assert first.json()["posts"] == {"total": 3, "authors": 3}


@pytest.mark.django_db(transaction=True, databases=ALL)
def test_stats_with_legacy_down_answers_200_degraded(settings) -> None:  # type: ignore[no-untyped-def]
    settings.FANOUT_BUDGETS = {**settings.FANOUT_BUDGETS, aliases.LEGACY: 0.5}
    client = api_client()
    with alias_down(aliases.LEGACY), Stopwatch() as watch:
        response = client.get("/api/v1/stats/")
    assert response.status_code == 200 and watch.seconds < 0.5 + 0.5
    body = response.json()
    assert body["degraded"] == [aliases.LEGACY] and body["legacy_customers"] is None
    assert valid(AggregatesStatsSerializer, body)


# --- user stats ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_user_stats_cached_and_invalidated_by_a_new_post() -> None:
    client = api_client()
    user = make_user()
    make_post(author=user)
    with counting() as miss:
        first = client.get(f"/api/v1/users/{user.pk}/stats/")
    with counting() as hit:
        second = client.get(f"/api/v1/users/{user.pk}/stats/")
    assert first.status_code == second.status_code == 200
    assert miss == {aliases.DEFAULT: AUTH + 1, aliases.USERS: 1, aliases.ANALYTICS: 1, aliases.CACHE: 1 + 4}
    assert hit == {aliases.CACHE: 1}  # the token is remembered
    assert second.json()["cached"] is True and second.json()["stats"]["post_count"] == 1
    assert valid(AggregatesUserStatsSerializer, first.json())
    make_post(author=user)
    third = client.get(f"/api/v1/users/{user.pk}/stats/").json()
    assert third["cached"] is False and third["stats"]["post_count"] == 2
    assert third["user"] == {"id": user.pk, "username": user.username, "email": user.email}


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_user_stats_unknown_user_is_404() -> None:
    assert api_client().get("/api/v1/users/31337/stats/").status_code == 404


# --- activity and report ---------------------------------------------------------------------


def _age(user: User, days: float) -> None:
    User.objects.filter(pk=user.pk).update(created_at=timezone.now() - dt.timedelta(days=days))


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_activity_joins_users_posts_and_events_one_query_each() -> None:
    client = api_client()
    busy, quiet, old = make_user(), make_user(), make_user()
    _age(busy, 2)
    _age(quiet, 5)
    _age(old, 40)
    for _ in range(7):
        make_post(author=busy)
    make_post(author=old)
    make_event(user_id=busy.pk, event_type="click")
    make_event(user_id=busy.pk, event_type="click")
    make_event(user_id=busy.pk, event_type="login", timestamp=timezone.now() - dt.timedelta(days=31))
    with counting() as n:
        response = client.get("/api/v1/users/activity/?days=30")
    assert response.status_code == 200
    assert n == {aliases.DEFAULT: AUTH + 1, aliases.USERS: 1, aliases.ANALYTICS: 1}
    body = response.json()
    assert valid(AggregatesActivityPageSerializer, body)
    assert body["count"] == 2 and body["next"] is None and body["previous"] is None
    first, second = body["results"]
    assert first["id"] == busy.pk and first["post_count"] == 7 and len(first["posts"]) == 5
    assert first["events"] == {"total": 2, "by_type": {"click": 2}}
    assert second["id"] == quiet.pk and second["post_count"] == 0 and second["posts"] == []
    assert second["events"] == {"total": 0, "by_type": {}}

    paged = client.get("/api/v1/users/activity/?days=30&page_size=1&page=2").json()
    assert [u["id"] for u in paged["results"]] == [quiet.pk] and paged["next"] is None
    assert paged["previous"] is not None
    assert client.get("/api/v1/users/activity/?days=30&page_size=1&page=3").status_code == 404


@pytest.mark.parametrize("days", ["0", "366", "-1", "abc", "1.5"])
@pytest.mark.django_db(databases=[aliases.DEFAULT])
def test_activity_rejects_bad_days(days: str) -> None:
    response = api_client().get(f"/api/v1/users/activity/?days={days}")
    assert response.status_code == 400


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_activity_of_an_empty_window_reads_users_db_only() -> None:
    client = api_client()
    _age(make_user(), 10)
    with counting() as n:
        response = client.get("/api/v1/users/activity/?days=1")
    assert response.status_code == 200
    assert response.json()["count"] == 0 and response.json()["results"] == []
    assert n == {aliases.DEFAULT: AUTH, aliases.USERS: 1}


@pytest.mark.django_db(transaction=True, databases=USER_DBS)
def test_new_user_activity_report() -> None:
    client = api_client()
    fresh, silent, old = make_user(), make_user(), make_user()
    _age(fresh, 1)
    _age(silent, 6)
    _age(old, 8)
    make_event(user_id=fresh.pk)
    make_event(user_id=fresh.pk)
    make_event(user_id=fresh.pk, timestamp=timezone.now() - dt.timedelta(days=9))
    make_event(user_id=old.pk)
    with counting() as n:
        response = client.get("/api/v1/reports/new-user-activity/")
    assert response.status_code == 200
    assert n == {aliases.DEFAULT: AUTH, aliases.USERS: 1, aliases.ANALYTICS: 1}
    body = response.json()
    assert valid(AggregatesNewUserActivitySerializer, body)
    assert [(u["id"], u["event_count"]) for u in body["users"]] == [(fresh.pk, 2), (silent.pk, 0)]
    assert body["total_users"] == 2 and body["total_events"] == 2 and body["truncated"] is False


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE, aliases.LEGACY])
@pytest.mark.parametrize(
    "url",
    ["/api/v1/stats/?foo=1", "/api/v1/reports/new-user-activity/?days=3", "/api/v1/users/activity/?page_sizes=2"],
)
def test_aggregates_refuse_unknown_query_parameters(url):
    response = api_client().get(url)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["code"] == "unknown_parameter"


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
def test_activity_page_number_out_of_range_is_a_400_not_a_database_error():
    response = api_client().get("/api/v1/users/activity/?days=5&page=1152921504606846975")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "page"
