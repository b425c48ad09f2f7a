"""Deleting a user everywhere (``user_delete_everywhere``): the same saga rules, no orphan ever."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.errors import NotFound
from core.models import SagaRun
from core.services import saga
from core.services.cached import source_name
from core.services.user_deletion import (
    STEP_ANALYTICS,
    STEP_CONTENT,
    STEP_USER,
    cache_key_prefix,
    user_delete_everywhere,
)
from core.users.models import User
from tests.factories import make_cache_entry, make_event, make_post, make_profile, make_user
from tests.sagas.faults import SimulatedCrash, last_saga, unreachable

DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]


def seed(posts: int = 3, events: int = 4):
    user = make_user()
    other = make_user()
    for _ in range(posts):
        make_post(author=user)
    make_post(author=other)
    make_profile(user_id=user.pk)
    make_profile(user_id=other.pk)
    for _ in range(events):
        make_event(user_id=user.pk)
    make_event(user_id=other.pk)
    make_cache_entry(key=f"{cache_key_prefix(user.pk)}summary")
    make_cache_entry(key=f"{cache_key_prefix(user.pk)}stats")
    make_cache_entry(key=f"user:{user.pk}0:summary")  # another user's key that shares the digits
    make_cache_entry(key=f"{cache_key_prefix(other.pk)}summary")
    return user, other


def snapshot(user_id: int) -> dict:
    return {
        "user": list(User.objects.filter(pk=user_id).values()),
        "posts": list(Post.objects.filter(author_id=user_id).order_by("pk").values()),
        "profile": list(UserProfile.objects.filter(user_id=user_id).values()),
        "events": sorted(AnalyticsEvent.objects.filter(user_id=user_id).values_list("pk", flat=True)),
    }


def assert_no_orphans() -> None:
    user_ids = set(User.objects.values_list("pk", flat=True))
    assert set(Post.objects.values_list("author_id", flat=True)) <= user_ids
    assert set(UserProfile.objects.values_list("user_id", flat=True)) <= user_ids
    assert set(AnalyticsEvent.objects.exclude(user_id=None).values_list("user_id", flat=True)) <= user_ids


@pytest.mark.django_db(databases=DBS)
def test_delete_removes_everything_of_the_user_and_nothing_else(queries):
    user, other = seed()
    other_before = snapshot(other.pk)
    with queries(aliases.CACHE) as on_cache, queries(aliases.ANALYTICS) as on_analytics:
        summary = user_delete_everywhere(user_id=user.pk)
    assert summary == {**summary, "posts": 3, "profiles": 1, "events": 4, "cache_entries": 2, "analytics": "anonymise"}
    assert snapshot(user.pk) == {"user": [], "posts": [], "profile": [], "events": []}
    assert AnalyticsEvent.objects.filter(user_id=None).count() == 4  # anonymised, kept
    assert sorted(CacheEntry.objects.values_list("key", flat=True)) == sorted(
        [f"user:{user.pk}0:summary", f"{cache_key_prefix(other.pk)}summary"]
    )
    assert snapshot(other.pk) == other_before
    assert SagaRun.objects.get(pk=summary["saga_id"]).status == SagaRun.Status.COMPLETED
    assert_no_orphans()
    vendor_extra = int(on_analytics.connection.vendor == "postgresql")
    # analytics: the ids, one UPDATE for all events (+ set_config of the step's time limits on PostgreSQL)
    analytics_sql = [
        q["sql"] for q in on_analytics.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    assert len(analytics_sql) == 2 + vendor_extra
    cache_sql = [q["sql"] for q in on_cache.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # one DELETE ... WHERE key LIKE 'user:<id>:%', and the user's cached stats in Django's cache
    # (the cache table on cache_db unless CACHE_URL names Redis)
    assert len(cache_sql) == 1 + int(source_name() == "cache_db")


@pytest.mark.django_db(databases=DBS)
@override_settings(USER_DELETION_ANALYTICS="delete")
def test_delete_mode_removes_the_events():
    user, _ = seed()
    user_delete_everywhere(user_id=user.pk)
    assert AnalyticsEvent.objects.count() == 1  # the other user's


@pytest.mark.django_db(databases=DBS)
def test_unknown_user_is_not_found_and_starts_no_saga():
    with pytest.raises(NotFound):
        user_delete_everywhere(user_id=999_999)
    assert not SagaRun.objects.exists()


@pytest.mark.django_db(databases=DBS, transaction=True)
@pytest.mark.parametrize("mode", ["anonymise", "delete"])
@pytest.mark.parametrize("step,alias", [(STEP_USER, aliases.USERS), (STEP_ANALYTICS, aliases.ANALYTICS)])
def test_failure_in_the_middle_restores_what_earlier_steps_removed(step, alias, mode, settings):
    settings.USER_DELETION_ANALYTICS = mode
    user, _other = seed(posts=5, events=6)
    before = snapshot(user.pk)
    outage = unreachable(alias)

    def go_down(point: str, name: str) -> None:
        if point == "before" and name == step:
            outage.__enter__()

    try:
        with saga.step_hook(go_down), pytest.raises(saga.SagaStepUnavailable) as info:
            user_delete_everywhere(user_id=user.pk)
    finally:
        outage.__exit__(None, None, None)
    assert (info.value.step, info.value.alias) == (step, alias)
    # Posts, profile and events are back with their ids and timestamps; the user still exists.
    assert {k: v for k, v in snapshot(user.pk).items() if k != "user"} == {
        k: v for k, v in before.items() if k != "user"
    }
    assert_no_orphans()
    if alias == aliases.USERS:
        # users_db was down: the fence's mark could not be cleared, so the user stays marked (writes
        # naming them refused) and the run failed until recover_sagas clears it.
        assert last_saga().status == SagaRun.Status.FAILED
        assert User.objects.get(pk=user.pk).deleting_saga_id == last_saga().pk
        assert [o.outcome for o in saga.recover(older_than=dt.timedelta(0))] == ["compensated"]
    assert snapshot(user.pk) == before
    assert last_saga().status == SagaRun.Status.COMPENSATED


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_crash_mid_deletion_is_finished_by_recover_sagas():
    user, _other = seed()
    with saga.step_hook(
        lambda p, n: (_ for _ in ()).throw(SimulatedCrash()) if (p, n) == ("after", STEP_CONTENT) else None
    ):
        with pytest.raises(SimulatedCrash):
            user_delete_everywhere(user_id=user.pk)
    assert User.objects.filter(pk=user.pk).exists() and not Post.objects.filter(author_id=user.pk).exists()
    assert_no_orphans()  # dependents go first: even a dead process leaves no orphan
    outcomes = saga.recover(older_than=dt.timedelta(0))
    assert [o.outcome for o in outcomes] == ["completed"]
    assert snapshot(user.pk) == {"user": [], "posts": [], "profile": [], "events": []}
    assert AnalyticsEvent.objects.filter(user_id=None).count() == 4
    assert last_saga().status == SagaRun.Status.COMPLETED
    assert_no_orphans()


@pytest.mark.django_db(databases=DBS, transaction=True)
@pytest.mark.parametrize("mode", ["anonymise", "delete"])
def test_recovery_that_cannot_finish_restores_from_the_logged_payloads(mode, settings):
    """Crash after delete_content; recovery runs with users_db down, so it undoes the deletion from
    the payloads stored in the log (JSON), with ids and timestamps exactly as before."""
    settings.USER_DELETION_ANALYTICS = mode
    user, _ = seed(posts=4, events=3)
    before = snapshot(user.pk)
    with saga.step_hook(
        lambda p, n: (_ for _ in ()).throw(SimulatedCrash()) if (p, n) == ("after", STEP_ANALYTICS) else None
    ):
        with pytest.raises(SimulatedCrash):
            user_delete_everywhere(user_id=user.pk)
    assert snapshot(user.pk)["posts"] == []
    with unreachable(aliases.USERS):
        outcomes = saga.recover(older_than=dt.timedelta(0))
    # Content restored; the mark on users_db waits for users_db (the next recovery clears it).
    assert [o.outcome for o in outcomes] == ["failed"]
    assert {k: v for k, v in snapshot(user.pk).items() if k != "user"} == {
        k: v for k, v in before.items() if k != "user"
    }
    assert [o.outcome for o in saga.recover(older_than=dt.timedelta(0))] == ["compensated"]
    assert snapshot(user.pk) == before
    assert_no_orphans()


@pytest.mark.django_db(databases=DBS)
def test_a_registered_then_deleted_user_leaves_no_personal_data_in_events():
    import json

    from core.services.registration import user_register

    registration = user_register(
        username="erasable_zoë", email="erase@example.com", first_name="Zoë", bio="", avatar_url=""
    )
    user_id = registration.user.pk
    user_delete_everywhere(user_id=user_id)
    assert not AnalyticsEvent.objects.filter(user_id=user_id).exists()
    for event in AnalyticsEvent.objects.all():
        text = json.dumps(event.data, ensure_ascii=False)
        assert "erasable" not in text and "erase@example.com" not in text
    assert AnalyticsEvent.objects.filter(event_type="user_registered", user_id__isnull=True).count() == 1
