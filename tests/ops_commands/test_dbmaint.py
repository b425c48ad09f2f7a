"""``manage.py dbmaint``: batched clean-ups, VACUUM outside transactions, health check exit status."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.cache.models import CacheEntry
from core.models import IdempotencyRecord
from core.services import maintenance
from tests.sagas.faults import closed_port, unreachable

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
ROOT = Path(__file__).resolve().parents[2]


def statements(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if not q["sql"].upper().startswith(CONTROL)]


def dbmaint(*args: str) -> str:
    out = StringIO()
    call_command("dbmaint", *args, stdout=out)
    return out.getvalue()


def seed_events(old: int, recent: int) -> None:
    now = timezone.now()
    AnalyticsEvent.objects.bulk_create(
        [AnalyticsEvent(event_type="page_view", timestamp=now - dt.timedelta(days=100 + i % 50)) for i in range(old)]
        + [AnalyticsEvent(event_type="page_view", timestamp=now - dt.timedelta(days=i % 80)) for i in range(recent)],
        batch_size=2000,
    )


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
@pytest.mark.parametrize("old,deletes", [(3000, 4), (6000, 7), (2500, 3)])
def test_cleanup_analytics_deletes_in_batches_with_one_statement_each(queries, old, deletes):
    seed_events(old, 200)
    with queries(aliases.ANALYTICS) as captured:
        output = dbmaint("--cleanup-analytics", "--days", "90", "--batch-size", "1000")
    assert AnalyticsEvent.objects.count() == 200
    # Besides the deletes, only catalog reads (is the table partitioned, which months) on PostgreSQL.
    sql = [s for s in statements(captured) if "pg_class" not in s and "pg_inherits" not in s]
    assert len(sql) == deletes and all(s.upper().startswith("DELETE") for s in sql)
    assert (
        f"analytics_db ({connections[aliases.ANALYTICS].vendor}): ok, deleted {old} events older than 90 days in {old // 1000 + (old % 1000 > 0)} batches"
        in output
    )


@pytest.mark.django_db(databases=[aliases.CACHE])
def test_cleanup_cache_deletes_only_expired_entries():
    now = timezone.now()
    CacheEntry.objects.bulk_create(
        [CacheEntry(key=f"old:{i}", value="x", expires_at=now - dt.timedelta(minutes=1)) for i in range(2100)]
        + [CacheEntry(key=f"new:{i}", value="x", expires_at=now + dt.timedelta(hours=1)) for i in range(50)]
        + [CacheEntry(key=f"forever:{i}", value="x", expires_at=None) for i in range(5)]
    )
    output = dbmaint("--cleanup-cache", "--batch-size", "1000")
    assert CacheEntry.objects.count() == 55
    assert "deleted 2100 expired cache entries in 3 batches" in output


@pytest.mark.django_db(databases=[aliases.DEFAULT])
def test_cleanup_idempotency_deletes_expired_keys():
    now = timezone.now()
    IdempotencyRecord.objects.bulk_create(
        [
            IdempotencyRecord(scope="s", key=f"k{i}", fingerprint="f", expires_at=now - dt.timedelta(seconds=1))
            for i in range(3)
        ]
        + [IdempotencyRecord(scope="s", key="live", fingerprint="f", expires_at=now + dt.timedelta(hours=1))]
    )
    assert "deleted 3 expired idempotency keys" in dbmaint("--cleanup-idempotency")
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["live"]


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE], transaction=True)
def test_vacuum_runs_outside_transactions_and_never_on_legacy():
    output = dbmaint("--vacuum")
    for alias in (aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE):
        vendor = connections[alias].vendor
        expected = "VACUUM ANALYZE" if vendor == "postgresql" else "VACUUM + PRAGMA optimize"
        assert f"{alias} ({vendor}): ok, vacuumed ({expected})" in output
    assert "legacy_db: skipped" in output
    with pytest.raises(ValueError):
        maintenance.vacuum(aliases.LEGACY)


@pytest.mark.django_db(databases=[aliases.ANALYTICS])
def test_vacuum_refuses_to_run_inside_a_transaction():
    with pytest.raises(RuntimeError, match="inside a transaction"):
        maintenance.vacuum(aliases.ANALYTICS)


ALL = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY, aliases.CACHE]


@pytest.mark.django_db(databases=ALL)
def test_health_check_passes_with_a_line_per_alias():
    output = dbmaint("--health-check")
    for alias in settings.DATABASES:
        assert f"{alias} ({connections[alias].vendor}): ok, SELECT 1 (required)" in output


@pytest.mark.django_db(databases=ALL)
def test_health_check_fails_when_a_required_alias_is_down():
    with unreachable(aliases.USERS):
        with pytest.raises(CommandError, match="required database\\(s\\) down: users_db") as info:
            dbmaint("--health-check")
    assert info.value.returncode == 1


@pytest.mark.django_db(databases=ALL)
def test_health_check_reports_an_optional_alias_down_without_failing(settings):
    settings.DBMAINT_REQUIRED_ALIASES = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]
    with unreachable(aliases.LEGACY):
        output = dbmaint("--health-check")
    assert f"{aliases.LEGACY} ({connections[aliases.LEGACY].vendor}): DOWN, SELECT 1 (optional)" in output


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )


def test_health_check_exit_status_of_the_real_command():
    """The process exit status, as cron/systemd/Kubernetes see it."""
    ok = _manage("dbmaint", "--health-check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    if connections[aliases.USERS].vendor == "sqlite":
        down = _manage(
            "dbmaint", "--health-check", USERS_DATABASE_URL="sqlite:////nonexistent-switchyard-dir/u.sqlite3"
        )
    else:
        down = _manage(
            "dbmaint", "--health-check", USERS_DATABASE_URL=f"postgres://postgres@127.0.0.1:{closed_port()}/x"
        )
    assert down.returncode == 1
    assert "users_db" in down.stdout and "DOWN" in down.stdout


def test_no_option_is_an_error():
    with pytest.raises(CommandError, match="choose at least one"):
        dbmaint()
