"""Database maintenance behind ``manage.py dbmaint``: batched clean-ups, VACUUM, health checks.

- Analytics retention drops whole monthly partitions older than the cut-off (PostgreSQL) and
  deletes only the rows of the month that straddles it (docs/analytics.md).
- Clean-ups delete in batches of ``batch_size`` rows, one short statement each
  (``DELETE ... WHERE id IN (SELECT id ... LIMIT n)``) in autocommit, so no lock is held for long
  and replication never gets one giant transaction. Queries: one per batch, plus one that finds
  nothing left.
- VACUUM runs outside any transaction (PostgreSQL refuses it inside one): ``VACUUM ANALYZE`` on
  PostgreSQL, ``VACUUM`` + ``PRAGMA optimize`` on SQLite; never on the legacy database (not ours)
  nor on replicas (read-only).
- The health check runs ``SELECT 1`` on every alias (replicas included) and reports the required
  ones (``DBMAINT_REQUIRED_ALIASES``) that are down.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from core import aliases
from core.analytics import partitions
from core.analytics.models import AnalyticsEvent
from core.cache.models import CacheEntry
from core.db_backends import fresh
from core.models import IdempotencyRecord

Progress = Callable[[int, int], None]  # batch number, rows deleted so far


@dataclass
class AliasReport:
    alias: str
    vendor: str
    ok: bool
    seconds: float
    count: int = 0
    batches: int = 0
    detail: str = ""


def _batched_delete(model, filters: dict, alias: str, batch_size: int, progress: Progress | None) -> AliasReport:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    total = 0
    batches = 0
    while True:
        ids = model.objects.filter(**filters).order_by("pk").values("pk")[:batch_size]
        deleted, _ = model.objects.filter(pk__in=ids).delete()
        if not deleted:
            break
        batches += 1
        total += deleted
        if progress is not None:
            progress(batches, total)
        if deleted < batch_size:
            break
    return AliasReport(alias, connections[alias].vendor, True, time.perf_counter() - started, total, batches)


def analytics_cleanup(*, days: int, batch_size: int, progress: Progress | None = None) -> AliasReport:
    """Remove analytics events older than ``days`` days.

    On a partitioned table (PostgreSQL) every month that ends at or before the cut-off is detached
    and dropped whole, its rollup rows subtracted in the same transaction
    (:func:`core.analytics.partitions.drop_month`); then only the rows of the month that straddles
    the cut-off (and old rows of the default partition) are deleted, ``batch_size`` per statement,
    the rollup triggers subtracting them. On a plain table everything goes by batched deletes.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    cutoff = timezone.now() - dt.timedelta(days=days)
    alias = aliases.ANALYTICS
    started = time.perf_counter()
    dropped: list[str] = []
    dropped_rows = 0
    if partitions.is_partitioned(connections[alias]):
        for month in partitions.months(connections[alias]):
            if partitions.bound(partitions.add_months(month, 1)) <= cutoff:
                drop = partitions.drop_month(using=alias, month=month)
                dropped.append(f"{month:%Y-%m}")
                dropped_rows += drop.rows
    report = _batched_delete(AnalyticsEvent, {"timestamp__lt": cutoff}, alias, batch_size, progress)
    report.count += dropped_rows
    report.seconds = time.perf_counter() - started
    if dropped:
        report.detail = f"dropped month partitions {', '.join(dropped)} ({dropped_rows} events)"
    return report


def cache_cleanup(*, batch_size: int, progress: Progress | None = None) -> AliasReport:
    """Delete expired cache entries (and expired rows of Django's database cache table when it is used)."""
    report = _batched_delete(CacheEntry, {"expires_at__lt": timezone.now()}, aliases.CACHE, batch_size, progress)
    connection = connections[aliases.CACHE]
    table = settings.CACHE_TABLE
    with connection.cursor() as cursor:
        if table in connection.introspection.table_names(cursor):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"DELETE FROM {quoted} WHERE expires < %s", [timezone.now()])
            report.count += max(cursor.rowcount, 0)
    return report


def idempotency_cleanup(*, batch_size: int, progress: Progress | None = None) -> AliasReport:
    """Delete Idempotency-Key records past their expiry."""
    return _batched_delete(
        IdempotencyRecord, {"expires_at__lte": timezone.now()}, aliases.DEFAULT, batch_size, progress
    )


def vacuum_aliases() -> list[str]:
    """Primaries we own: every primary alias but the legacy database."""
    return [a for a in aliases.PRIMARIES if a in settings.DATABASES and a != aliases.LEGACY]


def vacuum(alias: str) -> AliasReport:
    """``VACUUM ANALYZE`` (PostgreSQL) or ``VACUUM`` + ``PRAGMA optimize`` (SQLite) on ``alias``."""
    if alias == aliases.LEGACY or aliases.primary_of(alias) != alias:
        raise ValueError(f"{alias} is never vacuumed (legacy database or replica)")
    connection = connections[alias]
    if connection.in_atomic_block:
        raise RuntimeError(f"VACUUM cannot run inside a transaction on {alias}")
    started = time.perf_counter()
    statements = {
        "postgresql": ["VACUUM ANALYZE"],
        "sqlite": ["VACUUM", "PRAGMA optimize"],
    }.get(connection.vendor)
    if statements is None:
        return AliasReport(alias, connection.vendor, True, 0.0, detail=f"skipped: no VACUUM for {connection.vendor}")
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    return AliasReport(alias, connection.vendor, True, time.perf_counter() - started, detail=" + ".join(statements))


def probe(alias: str) -> None:
    """Open a fresh, unpooled connection to ``alias`` and run ``SELECT 1``; raises ``DatabaseError``.

    Bypassing the pool gives the real answer at once (refused, timed out after ``DB_CONNECT_TIMEOUT``)
    instead of the pool's own wait, and leaves the pool untouched.
    """
    fresh.select_one(alias)


def health_check(alias: str) -> AliasReport:
    """``SELECT 1`` on ``alias`` over a fresh connection; never raises for a database error (it is the answer)."""
    vendor = connections[alias].vendor
    started = time.perf_counter()
    try:
        probe(alias)
    except DatabaseError as exc:
        text = str(exc).strip()
        first_line = text.splitlines()[0] if text else type(exc).__name__
        return AliasReport(alias, vendor, False, time.perf_counter() - started, detail=first_line)
    return AliasReport(alias, vendor, True, time.perf_counter() - started)


def required_aliases() -> list[str]:
    return [a for a in settings.DBMAINT_REQUIRED_ALIASES if a in settings.DATABASES]
