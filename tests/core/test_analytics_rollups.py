"""Rollups of analytics events: every figure read from them equals the raw count on the same data,
after single and batch writes, updates, deletes, user deletion, retention, and concurrent writers.

Runs on the real PostgreSQL (statement triggers, partitioned table) and on SQLite (row triggers,
one plain table)."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter

import pytest
from django.db import OperationalError, close_old_connections, connections
from django.test import override_settings
from django.utils import timezone

from core import aliases
from core.analytics import partitions, selectors, services
from core.analytics.models import AnalyticsDailyCount, AnalyticsEvent, AnalyticsHourlyCount, AnalyticsUserDailyCount
from core.services import dashboard, maintenance, reports, stats
from tests.factories import make_user

TYPES = ("page_view", "click", "login", "purchase")


def utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


def raw_events() -> list[tuple[str, int | None, dt.datetime]]:
    return list(AnalyticsEvent.objects.order_by().values_list("event_type", "user_id", "timestamp"))


def assert_rollups_match_raw() -> None:
    """The rollup tables hold exactly the counts of the events table (no zero rows either)."""
    events = raw_events()
    hourly = Counter((ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0), t) for t, _, ts in events)
    got_hourly = {(r.hour, r.event_type): r.event_count for r in AnalyticsHourlyCount.objects.all()}
    assert got_hourly == dict(hourly)
    daily = Counter((utc_day(ts), t) for t, _, ts in events)
    per_user = Counter((u, utc_day(ts), t) for t, u, ts in events if u is not None)
    got_daily = {(r.day, r.event_type): r.event_count for r in AnalyticsDailyCount.objects.all()}
    got_user = {(r.user_id, r.day, r.event_type): r.event_count for r in AnalyticsUserDailyCount.objects.all()}
    assert got_daily == dict(daily)
    assert got_user == dict(per_user)


def raw_counts(*, since=None, until=None, user_id=None, user_ids=None) -> Counter:  # type: ignore[no-untyped-def]
    return Counter(
        t
        for t, u, ts in raw_events()
        if (since is None or ts >= since)
        and (until is None or ts < until)
        and (user_id is None or u == user_id)
        and (user_ids is None or u in user_ids)
    )


def assert_figures_match_raw(now: dt.datetime) -> None:
    """/stats/, the events summary, the dashboard's 30-day counts and the new-user report's counts
    against the raw events."""
    figures = stats._events(now, aliases.ANALYTICS)
    expected_total = raw_counts()
    assert {t: v["total"] for t, v in figures["by_type"].items()} == dict(expected_total)
    for name, delta in stats.WINDOWS:
        expected = raw_counts(since=now - delta)
        assert {t: v[name] for t, v in figures["by_type"].items() if v[name]} == dict(expected), name
        assert figures[name] == sum(expected.values())
    assert figures["total"] == sum(expected_total.values())

    midnight = dt.datetime.combine(utc_day(now), dt.time(), tzinfo=dt.UTC)
    windows = [
        (None, None),
        (now - dt.timedelta(days=3, hours=5), None),
        (None, now - dt.timedelta(days=2, minutes=7)),
        (now - dt.timedelta(days=20, hours=1), now - dt.timedelta(days=4, hours=3)),
        (midnight - dt.timedelta(days=5), midnight - dt.timedelta(days=1)),  # whole days only
        (now - dt.timedelta(hours=5), now - dt.timedelta(hours=1)),  # within a day
        (now - dt.timedelta(days=1, hours=1), now + dt.timedelta(hours=2)),
    ]
    users = sorted({u for _, u, _ in raw_events() if u is not None})
    for since, until in windows:
        for user_id in (None, *users[:3]):
            summary = selectors.event_summary(user_id=user_id, since=since, until=until)
            assert {r["event_type"]: r["count"] for r in summary} == dict(
                raw_counts(since=since, until=until, user_id=user_id)
            ), (since, until, user_id)
    since = now - dt.timedelta(days=dashboard.ANALYTICS_DAYS)
    for user_id in users:
        got = dashboard.fetch_event_counts(user_id, since).run()
        expected = raw_counts(since=since, user_id=user_id)
        assert got["by_type"] == dict(expected) and got["total"] == sum(expected.values())
    week = now - dt.timedelta(days=reports.NEW_USER_DAYS)
    got = reports._event_counts(users + [987_654], week, aliases.ANALYTICS)
    per_user = Counter(u for t, u, ts in raw_events() if u is not None and ts >= week)
    assert got == dict(per_user)


def spread_events(now: dt.datetime, n: int, seed: int = 7, users: int = 5) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "event_type": rng.choice(TYPES),
            "user_id": rng.choice([None, *range(1, users + 1)]),
            "timestamp": now - dt.timedelta(seconds=rng.randint(-3000, 40 * 86400)),
        }
        for _ in range(n)
    ]


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_rollups_and_every_figure_follow_writes_updates_and_deletes() -> None:
    now = timezone.now()
    assert services.event_batch_create(events=spread_events(now, 600)) == 600  # COPY on PostgreSQL
    for fields in spread_events(now, 40, seed=8):
        services.event_create(**fields)
    assert_rollups_match_raw()
    assert_figures_match_raw(now)

    # user deletion's two modes, through the service functions: anonymise (UPDATE) and delete
    assert services.events_anonymise_for_user(user_id=1) > 0
    assert services.events_delete_for_user(user_id=2) > 0
    # an update that moves events to another day and type
    moved = list(AnalyticsEvent.objects.filter(user_id=3).values_list("pk", flat=True)[:10])
    AnalyticsEvent.objects.filter(pk__in=moved).update(event_type="search", timestamp=now - dt.timedelta(days=9))
    assert_rollups_match_raw()
    assert_figures_match_raw(now)
    assert not AnalyticsUserDailyCount.objects.filter(user_id__in=[1, 2]).exists()  # no zero rows left

    AnalyticsEvent.objects.all().delete()
    assert not AnalyticsDailyCount.objects.exists() and not AnalyticsUserDailyCount.objects.exists()
    assert not AnalyticsHourlyCount.objects.exists()


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_a_failed_batch_leaves_no_count_behind() -> None:
    now = timezone.now()
    services.event_batch_create(events=spread_events(now, 50))
    before = list(
        AnalyticsDailyCount.objects.order_by("day", "event_type").values_list("day", "event_type", "event_count")
    )
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic(using=aliases.ANALYTICS):
        services.event_batch_create(events=spread_events(now, 30, seed=9))
        raise RuntimeError("the writer fails after the insert")
    after = list(
        AnalyticsDailyCount.objects.order_by("day", "event_type").values_list("day", "event_type", "event_count")
    )
    assert after == before
    assert_rollups_match_raw()


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_retention_drops_old_months_and_the_figures_stay_equal_to_the_raw_counts() -> None:
    now = timezone.now()
    connection = connections[aliases.ANALYTICS]
    ages = [200, 150, 120, 95, 91, 89, 60, 3, 0]
    if partitions.is_partitioned(connection):
        # partitions for every month the events fall in (ensure_ahead from the oldest one)
        oldest = now - dt.timedelta(days=max(ages) + 1)
        months_back = (now.year - oldest.year) * 12 + now.month - oldest.month
        partitions.ensure_ahead(using=aliases.ANALYTICS, ahead=months_back + 3, now=oldest)
    services.event_batch_create(
        events=[
            {"event_type": TYPES[i % 4], "user_id": 1 + i % 3, "timestamp": now - dt.timedelta(days=age, minutes=i)}
            for age in ages
            for i in range(20)
        ]
    )
    assert_rollups_match_raw()
    report = maintenance.analytics_cleanup(days=90, batch_size=7)
    cutoff = now - dt.timedelta(days=90)
    assert not AnalyticsEvent.objects.filter(timestamp__lt=cutoff - dt.timedelta(seconds=5)).exists()
    assert AnalyticsEvent.objects.count() == 20 * 4  # ages 89, 60, 3, 0 (89 days + up to 19 min)
    assert report.count == 20 * 5
    assert_rollups_match_raw()
    assert_figures_match_raw(timezone.now())
    if partitions.is_partitioned(connection):
        # every month that ended before the cut-off went whole; the straddling one is still there
        left = partitions.months(connection)
        assert left[0] == partitions.month_start(cutoff)
        assert "dropped month partitions" in report.detail
        # fewer row deletes than events removed: the whole months went without any
        assert report.batches * 7 < report.count


@pytest.mark.django_db(databases="__all__", transaction=True)
@pytest.mark.parametrize("mode", ["anonymise", "delete"])
def test_user_deletion_keeps_the_rollups_right(mode: str) -> None:
    from core.services.user_deletion import user_delete_everywhere

    now = timezone.now()
    gone, kept = make_user(), make_user()
    services.event_batch_create(
        events=[
            {
                "event_type": TYPES[i % 4],
                "user_id": (gone.pk, kept.pk)[i % 2],
                "timestamp": now - dt.timedelta(hours=7 * i),
            }
            for i in range(120)
        ]
    )
    with override_settings(USER_DELETION_ANALYTICS=mode):
        user_delete_everywhere(user_id=gone.pk)
    assert not AnalyticsUserDailyCount.objects.filter(user_id=gone.pk).exists()
    assert_rollups_match_raw()
    assert_figures_match_raw(now)


@pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)
def test_concurrent_writers_deleters_and_retention_never_lose_or_double_a_count() -> None:
    """Several threads write (one by one and in batches), anonymise, delete and run retention at
    the same time on the same days and types; afterwards every rollup row equals the raw count."""
    now = timezone.now()
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def retried(step) -> None:  # type: ignore[no-untyped-def]
        # An UPDATE and a DELETE that lock overlapping event rows in different orders may deadlock
        # (with or without rollups); PostgreSQL rolls one back whole, and the client retries it.
        for _ in range(5):
            try:
                step()
                return
            except OperationalError as exc:
                if "deadlock" not in str(exc):
                    raise
        raise AssertionError("still deadlocking after 5 tries")

    def worker(kind: int) -> None:
        try:
            start.wait()
            for round_ in range(15):
                retried(lambda: step(kind, round_))
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            close_old_connections()
            connections.close_all()

    def step(kind: int, round_: int) -> None:
        if kind == 0:
            services.event_batch_create(events=spread_events(now, 40, seed=round_, users=3))
        elif kind == 1:
            for fields in spread_events(now, 5, seed=100 + round_, users=3):
                services.event_create(**fields)
        elif kind == 2:
            AnalyticsEvent.objects.filter(user_id=1 + round_ % 3, event_type="click").update(user_id=None)
        elif kind == 3:
            AnalyticsEvent.objects.filter(user_id=1 + round_ % 3, event_type="login").delete()
        else:
            maintenance.analytics_cleanup(days=30, batch_size=13)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert AnalyticsEvent.objects.count() > 0
    assert_rollups_match_raw()
    assert_figures_match_raw(now)


def _t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_a_window_splits_into_whole_days_whole_hours_and_raw_minutes_at_its_edges() -> None:
    whole, raw = selectors.window_parts(_t("2026-11-03 10:20"), _t("2026-11-07 05:45"))
    assert whole[selectors.DAY] == [(_t("2026-11-04 00:00"), _t("2026-11-07 00:00"))]
    assert whole[selectors.HOUR] == [
        (_t("2026-11-03 11:00"), _t("2026-11-04 00:00")),
        (_t("2026-11-07 00:00"), _t("2026-11-07 05:00")),
    ]
    assert raw == [(_t("2026-11-03 10:20"), _t("2026-11-03 11:00")), (_t("2026-11-07 05:00"), _t("2026-11-07 05:45"))]
    # unbounded sides, aligned bounds, a window inside one hour, days only (per-user figures)
    whole, raw = selectors.window_parts(None, None)
    assert whole[selectors.DAY] == [(None, None)] and raw == []
    whole, raw = selectors.window_parts(_t("2026-11-03 00:00"), None)
    assert whole[selectors.DAY] == [(_t("2026-11-03 00:00"), None)] and raw == []
    whole, raw = selectors.window_parts(_t("2026-11-03 10:20"), _t("2026-11-03 10:50"))
    assert whole == {selectors.DAY: [], selectors.HOUR: []} and raw == [
        (_t("2026-11-03 10:20"), _t("2026-11-03 10:50"))
    ]
    whole, raw = selectors.window_parts(_t("2026-11-03 10:20"), None, [selectors.DAY])
    assert whole[selectors.DAY] == [(_t("2026-11-04 00:00"), None)] and raw == [
        (_t("2026-11-03 10:20"), _t("2026-11-04 00:00"))
    ]
