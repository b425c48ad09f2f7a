"""Cold months of analytics events on their own databases (docs/analytics.md).

``archive_before(before=2026-06-01)`` moves every whole month before ``before`` that still has a
partition on analytics_db to its monthly database (alias from routers.timeseries, configured by
``TIMESERIES_DATABASE_URL`` / ``TIMESERIES_FIRST_MONTH``), one month at a time:

1. The month's database is created when missing (where the role may), and its ``analytics_event``
   table (the model's own schema, a plain table) when missing.
2. On analytics_db, one transaction locks the month's partition against writes (SHARE) and
   streams it with ``COPY ... TO STDOUT (FORMAT BINARY)`` into ``COPY ... FROM STDIN`` on the month's
   database, inside a transaction there that first empties the month's table (so a run
   interrupted anywhere simply starts the month again).
3. Count and checksum (the sum of a 60-bit slice of each row's md5) are computed on both sides;
   on a mismatch both transactions roll back and nothing is dropped.
4. The month's database commits; then, still in the first transaction, the month is recorded in
   ``analytics_archived_month`` and its partition detached and dropped; commit.

If the process stops between the two commits, the month is still on analytics_db (not
recorded): the next run copies it again over the earlier copy. The rollups are not touched: they
keep archived months, so every figure still counts them.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.db import connections, router, transaction
from psycopg import sql as pgsql

from core import aliases
from core.analytics import partitions
from core.analytics.models import AnalyticsArchivedMonth, AnalyticsEvent
from routers.timeseries import MONTH_HINT, monthly_aliases

Progress = Callable[[str], None]

_COLUMNS = ("id", "event_type", "user_id", "session_id", "timestamp", "data")
_CHECKSUM = (
    "SELECT COUNT(*), COALESCE(SUM(('x' || substr(md5(concat_ws('|', id, event_type, user_id, session_id, "
    'extract(epoch FROM "timestamp"), data::text)), 1, 15))::bit(60)::bigint), 0), MIN(id), MAX(id) FROM {table}'
)


class ArchiveError(Exception):
    """A month cannot be archived (no alias for it, a check failed); nothing was dropped."""


@dataclass
class MonthReport:
    month: dt.date
    alias: str
    rows: int
    seconds: float
    created_database: bool = False


def alias_for_month(month: dt.date) -> str:
    """The month's database alias, chosen by the routers (the time-based one answers for the hint)."""
    alias = router.db_for_write(AnalyticsEvent, **{MONTH_HINT: month})
    if alias not in monthly_aliases():
        raise ArchiveError(
            f"no database alias for {month:%Y-%m}: set TIMESERIES_DATABASE_URL and TIMESERIES_FIRST_MONTH"
        )
    return alias


def ensure_database(alias: str) -> bool:
    """Create the alias's PostgreSQL database when it is missing. Returns whether it was created."""
    config = connections[alias].settings_dict
    if connections[alias].vendor != "postgresql":
        return False
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    name = config["NAME"]
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    return True


def ensure_table(alias: str) -> None:
    connection = connections[alias]
    with connection.cursor() as cursor:
        present = AnalyticsEvent._meta.db_table in connection.introspection.table_names(cursor)
    if not present:
        with connection.schema_editor() as editor:
            editor.create_model(AnalyticsEvent)


def archived_months() -> list[AnalyticsArchivedMonth]:
    return list(AnalyticsArchivedMonth.objects.using(aliases.ANALYTICS).order_by("-month"))


def archive_month(month: dt.date, *, progress: Progress | None = None) -> MonthReport:
    say = progress or (lambda _text: None)
    started = time.perf_counter()
    alias = alias_for_month(month)
    created = ensure_database(alias)
    ensure_table(alias)
    name = partitions.partition_name(month)
    columns = ", ".join(f'"{c}"' for c in _COLUMNS)
    table = AnalyticsEvent._meta.db_table
    source, target = connections[aliases.ANALYTICS], connections[alias]
    with transaction.atomic(using=aliases.ANALYTICS), source.cursor() as src:
        src.execute(f"SET LOCAL lock_timeout = '{partitions.LOCK_TIMEOUT}'")
        src.execute(f"LOCK TABLE {name} IN SHARE MODE")
        src.execute(_CHECKSUM.format(table=name))
        rows, checksum, min_id, max_id = src.fetchone()
        with transaction.atomic(using=alias), target.cursor() as dst:
            dst.execute(f"DELETE FROM {table}")
            with (
                src.cursor.copy(f"COPY (SELECT {columns} FROM {name}) TO STDOUT (FORMAT BINARY)") as out,
                dst.cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as into,
            ):
                for block in out:
                    into.write(block)
            dst.execute(_CHECKSUM.format(table=table))
            copied = dst.fetchone()
            if (int(copied[0]), int(copied[1])) != (int(rows), int(checksum)):
                raise ArchiveError(
                    f"{month:%Y-%m}: copy check failed on {alias} ({copied[0]} rows, checksum {copied[1]}; "
                    f"expected {rows}, {checksum}); nothing dropped"
                )
            if max_id is not None:  # ids stay unique if a row is ever written there
                dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [max_id])
        say(f"{month:%Y-%m}: {rows} events copied to {alias} and verified (count and checksum)")
        AnalyticsArchivedMonth.objects.using(aliases.ANALYTICS).update_or_create(
            month=month,
            defaults={"alias": alias, "rows": rows, "checksum": checksum, "min_id": min_id, "max_id": max_id},
        )
        src.execute(f"ALTER TABLE {partitions.PARENT} DETACH PARTITION {name}")
        src.execute(f"DROP TABLE {name}")
    return MonthReport(month, alias, int(rows), time.perf_counter() - started, created)


def archive_before(*, before: dt.date, progress: Progress | None = None) -> list[MonthReport]:
    """Archive every month with a partition that ends on or before ``before``, oldest first."""
    if not partitions.is_partitioned(connections[aliases.ANALYTICS]):
        raise ArchiveError("analytics_event is not partitioned (manage.py analytics_partitions --convert)")
    due = [m for m in partitions.months(connections[aliases.ANALYTICS]) if partitions.add_months(m, 1) <= before]
    return [archive_month(month, progress=progress) for month in due]
