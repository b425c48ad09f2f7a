"""Monthly partitions of analytics events on PostgreSQL: the migrated table, partitions ahead, the
default partition and its report, the online converter under concurrent writers."""

from __future__ import annotations

import datetime as dt
import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connections
from django.utils import timezone

from core import aliases
from core.analytics import partitions, rollups, services
from core.analytics.models import AnalyticsEvent
from tests.core.test_analytics_rollups import assert_figures_match_raw, assert_rollups_match_raw, spread_events


def _pg() -> None:
    if connections[aliases.ANALYTICS].vendor != "postgresql":
        pytest.skip("partitions are PostgreSQL's (SQLite keeps one plain table)")


def _catalog(sql: str, params: list | None = None) -> list[tuple]:
    with connections[aliases.ANALYTICS].cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def partition_indexes(name: str) -> set[str]:
    rows = _catalog("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [name])
    return {row[0].split(" USING btree ", 1)[1].replace('"', "") for row in rows}


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_the_migrated_table_is_partitioned_by_month_with_the_indexes_on_each_partition() -> None:
    _pg()
    connection = connections[aliases.ANALYTICS]
    assert partitions.is_partitioned(connection)
    assert _catalog("SELECT pg_get_partkeydef('analytics_event'::regclass)") == [('RANGE ("timestamp")',)]
    now = timezone.now()
    partitions.ensure_ahead(using=aliases.ANALYTICS, ahead=3, now=now)
    months = partitions.months(connection)
    current = partitions.month_start(now)
    assert [partitions.add_months(current, n) for n in range(4)] == [m for m in months if m >= current]
    assert partitions.has_default(connection)
    expected = {
        "(id, timestamp)",
        "(timestamp)",
        "(event_type, timestamp)",
        "(user_id, timestamp) INCLUDE (event_type)",
    }
    for month in months:
        assert partition_indexes(partitions.partition_name(month)) == expected
    # an event lands in its month's partition
    event = services.event_create(event_type="login", user_id=4, timestamp=now)
    assert _catalog("SELECT tableoid::regclass::text FROM analytics_event WHERE id = %s", [event.pk]) == [
        (partitions.partition_name(current),)
    ]
    # the queries use the indexes of the partitions they need only (pruning by timestamp)
    plan = "\n".join(
        r[0]
        for r in _catalog(
            'EXPLAIN SELECT COUNT(*) FROM analytics_event WHERE "timestamp" >= %s AND "timestamp" < %s',
            [partitions.bound(current), partitions.bound(partitions.add_months(current, 1))],
        )
    )
    assert partitions.partition_name(current) in plan
    assert partitions.partition_name(partitions.add_months(current, 1)) not in plan


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_an_event_outside_every_partition_lands_in_the_default_partition_and_is_reported() -> None:
    _pg()
    old = dt.datetime(2005, 3, 15, 12, tzinfo=dt.UTC)
    services.event_create(event_type="legacy_import", user_id=9, timestamp=old)
    services.event_create(event_type="legacy_import", timestamp=old + dt.timedelta(days=40))
    assert _catalog("SELECT COUNT(*) FROM analytics_event_default") == [(2,)]
    out, err = StringIO(), StringIO()
    call_command("analytics_partitions", "--ensure-ahead", "3", stdout=out, stderr=err)
    assert "2 events outside every monthly partition" in err.getvalue()
    assert "2005-03: 1, 2005-04: 1" in err.getvalue()
    # creating the month's partition moves its rows out of the default one; figures unchanged
    report = partitions.ensure_ahead(using=aliases.ANALYTICS, ahead=0, now=old)
    assert report.moved == 1 and report.created == ["analytics_event_y2005m03"]
    assert _catalog("SELECT COUNT(*) FROM analytics_event_y2005m03") == [(1,)]
    assert report.default_rows == {dt.date(2005, 4, 1): 1}
    assert_rollups_match_raw()


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_analytics_partitions_refuses_bad_arguments() -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="choose at least one"):
        call_command("analytics_partitions")
    with pytest.raises(CommandError, match="from 0 to 120"):
        call_command("analytics_partitions", "--ensure-ahead", "-1")
    with pytest.raises(CommandError, match="at least 1"):
        call_command("analytics_partitions", "--convert", "--batch-size", "0")


@pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)
def test_migrate_all_creates_the_partitions_three_months_ahead() -> None:
    _pg()
    ahead = partitions.add_months(partitions.month_start(timezone.now()), 3)
    name = partitions.partition_name(ahead)
    with connections[aliases.ANALYTICS].cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
    call_command("migrate_all", "--database", aliases.ANALYTICS, stdout=StringIO())
    assert ahead in partitions.months(connections[aliases.ANALYTICS])


def _make_plain_table() -> None:
    """Put the analytics table back to the unpartitioned shape of before 0003 (rollups kept)."""
    partitions.to_plain(using=aliases.ANALYTICS)
    with connections[aliases.ANALYTICS].cursor() as cursor:
        for sql in rollups.pg_create_triggers_sql():
            cursor.execute(sql)
    assert not partitions.is_partitioned(connections[aliases.ANALYTICS])


@pytest.mark.django_db(databases=[aliases.ANALYTICS], transaction=True)
def test_convert_copies_in_batches_while_writers_go_on_and_loses_or_doubles_nothing() -> None:
    _pg()
    _make_plain_table()
    now = timezone.now()
    services.event_batch_create(events=spread_events(now, 3000, users=4))
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [0]

    def writer() -> None:
        """Writes, anonymises and deletes during the whole conversion (the swap waits for it)."""
        try:
            n = 0
            while not stop.is_set():
                n += 1
                services.event_batch_create(events=spread_events(now, 20, seed=1000 + n, users=4))
                written[0] += 20
                services.event_create(event_type="click", user_id=n % 4 + 1, timestamp=now - dt.timedelta(days=n % 50))
                written[0] += 1
                AnalyticsEvent.objects.filter(user_id=n % 4 + 1, event_type="login").update(user_id=None)
                AnalyticsEvent.objects.filter(event_type="purchase", user_id=(n + 1) % 4 + 1).delete()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            close_old_connections()
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        progress: list[str] = []
        report = partitions.convert(using=aliases.ANALYTICS, batch_size=100, now=now, progress=progress.append)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert written[0] > 0
    assert report.batches >= 20 and report.swap_rows > 0 and report.rows > 3000 - 1000
    connection = connections[aliases.ANALYTICS]
    assert partitions.is_partitioned(connection)
    assert _catalog("SELECT COUNT(*) FROM analytics_event_default") == [(0,)]
    # new writes get new ids from the handed-over sequence, and still reach the rollups
    event = services.event_create(event_type="after_swap", user_id=1, timestamp=now)
    assert event.pk > _catalog("SELECT MAX(id) FROM analytics_event WHERE id <> %s", [event.pk])[0][0]
    assert_rollups_match_raw()
    assert_figures_match_raw(now)
    assert not _catalog(
        "SELECT 1 FROM pg_class WHERE relname IN ('analytics_event_partitioned', 'analytics_event_convert_log')"
    )
