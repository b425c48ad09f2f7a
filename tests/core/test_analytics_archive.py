"""Cold months on their own databases, on the machine's PostgreSQL: two monthly databases
(scripts/test pass 5 sets TIMESERIES_DATABASE_URL and TIMESERIES_FIRST_MONTH two months back)."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from core import aliases
from core.analytics import archive, partitions, selectors, services
from core.analytics.models import AnalyticsArchivedMonth, AnalyticsEvent
from core.services import stats
from routers.timeseries import MONTH_HINT, alias_for, monthly_aliases

pytestmark = pytest.mark.timeseries_archive

NOW = timezone.now()
CURRENT = partitions.month_start(NOW)
OLDER, OLD = partitions.add_months(CURRENT, -2), partitions.add_months(CURRENT, -1)
MONTHS = [alias_for(OLDER), alias_for(OLD)]


def _events_everywhere() -> list[tuple[int, dt.datetime, str, int | None]]:
    rows = list(AnalyticsEvent.objects.values_list("id", "timestamp", "event_type", "user_id"))
    for month in (OLDER, OLD):
        connection = connections[alias_for(month)]
        with connection.cursor() as cursor:
            if "analytics_event" not in connection.introspection.table_names(cursor):
                continue
        rows += list(
            AnalyticsEvent.objects.db_manager(hints={MONTH_HINT: month}).values_list(
                "id", "timestamp", "event_type", "user_id"
            )
        )
    return rows


def _seed() -> None:
    partitions.ensure_ahead(using=aliases.ANALYTICS, ahead=3, now=partitions.bound(OLDER))
    events = []
    for month, n in ((OLDER, 70), (OLD, 90), (CURRENT, 40)):
        start = partitions.bound(month)
        for i in range(n):
            moment = start + dt.timedelta(hours=7 * i)
            if moment < NOW:
                events.append(
                    {"event_type": ("view", "click", "buy")[i % 3], "user_id": 1 + i % 4, "timestamp": moment}
                )
    services.event_batch_create(events=events)


def _figures() -> dict:
    return {
        "stats": stats._events(NOW, aliases.ANALYTICS),
        "summary": selectors.event_summary(),
        "user": selectors.event_summary(user_id=2, since=partitions.bound(OLDER) + dt.timedelta(hours=5)),
    }


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, *MONTHS], transaction=True)
def test_archive_moves_whole_months_verified_and_reads_find_them(monkeypatch) -> None:
    assert set(MONTHS) <= set(monthly_aliases())
    for alias in MONTHS:  # the archive creates the table where it is missing
        with connections[alias].cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS analytics_event")
    _seed()
    before = sorted(_events_everywhere())
    figures = _figures()

    # An interrupted run: a reader holds the parent table, so the detach times out after the month's
    # database committed its copy. Nothing is dropped or recorded; the next run copies again.
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "300ms")
    holder = psycopg.connect(
        host=settings.DATABASES[aliases.ANALYTICS]["HOST"],
        port=settings.DATABASES[aliases.ANALYTICS]["PORT"] or 5432,
        user=settings.DATABASES[aliases.ANALYTICS]["USER"],
        dbname=connections[aliases.ANALYTICS].settings_dict["NAME"],
    )
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE analytics_event IN ACCESS SHARE MODE")
        with pytest.raises(Exception, match="lock timeout"):
            call_command("dbmaint", "--archive-analytics", "--before", f"{CURRENT:%Y-%m}", stdout=StringIO())
    finally:
        holder.rollback()
        holder.close()
    assert OLDER in partitions.months(connections[aliases.ANALYTICS])
    assert not AnalyticsArchivedMonth.objects.exists()
    assert AnalyticsEvent.objects.db_manager(hints={MONTH_HINT: OLDER}).count() == 70  # copied, not dropped

    out = StringIO()
    call_command("dbmaint", "--archive-analytics", "--before", f"{CURRENT:%Y-%m}", stdout=out)
    text = out.getvalue()
    assert f"{MONTHS[0]}: archived {OLDER:%Y-%m}, 70 events" in text
    assert f"{MONTHS[1]}: archived {OLD:%Y-%m}, 90 events" in text
    assert "verified (count and checksum)" in text
    remaining = partitions.months(connections[aliases.ANALYTICS])
    assert OLDER not in remaining and OLD not in remaining and CURRENT in remaining
    assert [(a.month, a.alias, a.rows) for a in AnalyticsArchivedMonth.objects.order_by("month")] == [
        (OLDER, MONTHS[0], 70),
        (OLD, MONTHS[1], 90),
    ]
    # every event is in exactly one place, as it was
    assert sorted(_events_everywhere()) == before
    assert AnalyticsEvent.objects.filter(timestamp__lt=partitions.bound(CURRENT)).count() == 0
    # summaries come from the rollups, which keep archived months: the same figures
    assert _figures() == figures
    assert figures["stats"]["total"] == len(before)
    # a second run has nothing left to do
    again = StringIO()
    call_command("dbmaint", "--archive-analytics", "--before", f"{CURRENT:%Y-%m}", stdout=again)
    assert "no month before" in again.getvalue()

    # an archived event's detail, through the time-based router
    old_id = min(row[0] for row in before if row[1] < partitions.bound(OLD))
    event = selectors.event_get(event_id=old_id)
    assert event.pk == old_id and event._state.db == MONTHS[0]

    # the list walks the live table and then the months, newest first, with one cursor
    from tests.factories import api_client

    client = api_client(staff=True)
    seen, url = [], "/api/v1/analytics/events/?page_size=25"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [item["id"] for item in body["results"]]
        url = body["next"]
    expected = [row[0] for row in sorted(before, key=lambda r: (r[1], r[0]), reverse=True)]
    assert seen == expected
    # filters apply in every month; the detail endpoint answers for an archived event
    response = client.get(f"/api/v1/analytics/events/?user_id=3&until={partitions.bound(OLD):%Y-%m-%dT%H:%M:%SZ}")
    assert [i["id"] for i in response.json()["results"]] == [
        row[0]
        for row in sorted(before, key=lambda r: (r[1], r[0]), reverse=True)
        if row[3] == 3 and row[1] < partitions.bound(OLD)
    ][:50]
    assert client.get(f"/api/v1/analytics/events/{old_id}/").json()["id"] == old_id


def test_archive_creates_a_missing_monthly_database() -> None:
    alias = alias_for(CURRENT)  # configured, not used by any test: its real name
    name = connections[alias].settings_dict["NAME"]
    config = settings.DATABASES[alias]
    with psycopg.connect(
        host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"], dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        try:
            assert archive.ensure_database(alias) is True
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            assert archive.ensure_database(alias) is False
        finally:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_archive_refuses_a_month_without_a_database_alias() -> None:
    ancient = dt.date(2001, 1, 1)
    with pytest.raises(archive.ArchiveError, match="no database alias for 2001-01"):
        archive.alias_for_month(ancient)
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("dbmaint", "--archive-analytics", "--before", "June")
