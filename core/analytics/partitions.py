"""Monthly range partitions of ``analytics_event`` on PostgreSQL (docs/analytics.md).

- One partition per UTC month, ``analytics_event_y2026m11``, for ``[2026-11-01, 2026-12-01)``,
  plus ``analytics_event_default`` for an event outside every month partition (reported by
  ``analytics_partitions``). The parent holds the indexes (``PRIMARY KEY (id, timestamp)``,
  ``timestamp``, ``(event_type, timestamp)``, ``(user_id, timestamp) INCLUDE (event_type)``);
  PostgreSQL builds them on every partition.
- :func:`ensure_ahead` creates the coming months' partitions; when the default partition already
  holds rows of a new month, they are moved into it in the same transaction.
- :func:`convert` turns an unpartitioned table into a partitioned one: copy in batches by id while
  writers go on, then one short locked step copies the rest, checks count and checksum and swaps.
- :func:`drop_month` detaches and drops one month and subtracts its rollup rows in one transaction.

SQLite keeps one plain table: every function here is for PostgreSQL only.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from core.analytics import rollups

PARENT = rollups.EVENTS
DEFAULT_PARTITION = f"{PARENT}_default"
NEW_PARENT = f"{PARENT}_partitioned"
CHANGE_LOG = f"{PARENT}_convert_log"
_NAME = re.compile(rf"^{PARENT}_y(\d{{4}})m(\d{{2}})$")
#: How long a DDL step waits for a lock before giving up (it is retried by the next run): a DDL
#: statement queued behind a long query would otherwise block every writer queued behind it.
LOCK_TIMEOUT = "5s"
SWAP_LOCK_TIMEOUT = "30s"

Progress = Callable[[str], None]


def month_start(moment: dt.datetime | dt.date) -> dt.date:
    return dt.date(moment.year, moment.month, 1)


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def bound(month: dt.date) -> dt.datetime:
    return dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_y{month.year:04d}m{month.month:02d}"


def is_partitioned(connection: BaseDatabaseWrapper) -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def months(connection: BaseDatabaseWrapper, parent: str = PARENT) -> list[dt.date]:
    """The months that have a partition, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [parent],
        )
        names = [r[0] for r in cursor.fetchall()]
    found = []
    for name in names:
        match = _NAME.match(name)
        if match:
            found.append(dt.date(int(match[1]), int(match[2]), 1))
    return sorted(found)


def has_default(connection: BaseDatabaseWrapper, parent: str = PARENT) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_inherits WHERE inhparent = to_regclass(%s) AND inhrelid = to_regclass(%s)",
            [parent, DEFAULT_PARTITION],
        )
        return cursor.fetchone() is not None


def default_rows_by_month(connection: BaseDatabaseWrapper) -> dict[dt.date, int]:
    """Rows in the default partition, per month (each is an event outside every partition)."""
    if not has_default(connection):
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT date_trunc('month', \"timestamp\" AT TIME ZONE 'UTC')::date, COUNT(*) "
            f"FROM {DEFAULT_PARTITION} GROUP BY 1 ORDER BY 1"
        )
        return {month: int(n) for month, n in cursor.fetchall()}


def _create_month(cursor, month: dt.date, parent: str, with_default: bool) -> int:  # type: ignore[no-untyped-def]
    """Create the partition of ``month``; rows of that month in the default partition move into
    it (they change no figure, so no trigger fires: the statements name partitions, not the
    parent). Returns how many rows moved."""
    name = partition_name(month)
    lower, upper = bound(month), bound(add_months(month, 1))
    moved = 0
    if with_default:
        cursor.execute(
            f'SELECT COUNT(*) FROM {DEFAULT_PARTITION} WHERE "timestamp" >= %s AND "timestamp" < %s', [lower, upper]
        )
        moved = int(cursor.fetchone()[0])
    if not moved:
        cursor.execute(f"CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM (%s) TO (%s)", [lower, upper])
        return 0
    cursor.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    cursor.execute(
        f'INSERT INTO {name} SELECT * FROM {DEFAULT_PARTITION} WHERE "timestamp" >= %s AND "timestamp" < %s',
        [lower, upper],
    )
    cursor.execute(f'DELETE FROM {DEFAULT_PARTITION} WHERE "timestamp" >= %s AND "timestamp" < %s', [lower, upper])
    cursor.execute(f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [lower, upper])
    return moved


@dataclass
class EnsureReport:
    created: list[str] = field(default_factory=list)
    moved: int = 0
    default_rows: dict[dt.date, int] = field(default_factory=dict)
    seconds: float = 0.0


def ensure_ahead(*, using: str, ahead: int, now: dt.datetime) -> EnsureReport:
    """Partitions for the current month and ``ahead`` months after it, and the default partition."""
    connection = connections[using]
    started = time.perf_counter()
    report = EnsureReport()
    if not is_partitioned(connection):
        return report
    have = set(months(connection))
    current = month_start(now)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        if not has_default(connection):
            cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {PARENT} DEFAULT")
            report.created.append(DEFAULT_PARTITION)
        for n in range(ahead + 1):
            month = add_months(current, n)
            if month not in have:
                report.moved += _create_month(cursor, month, PARENT, with_default=True)
                report.created.append(partition_name(month))
    report.default_rows = default_rows_by_month(connection)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class DropReport:
    month: dt.date
    rows: int
    seconds: float


def drop_month(*, using: str, month: dt.date) -> DropReport:
    """Detach and drop the partition of ``month``, and subtract its events from the rollups, in one
    transaction (a drop fires no trigger). Writers of that month wait for the lock (at most
    :data:`LOCK_TIMEOUT`); one arriving after the commit lands in the default partition, where
    retention's row deletes find it."""
    connection = connections[using]
    started = time.perf_counter()
    name = partition_name(month)
    lower, upper = month, add_months(month, 1)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
        cursor.execute(f"SELECT COUNT(*) FROM {name}")
        rows = int(cursor.fetchone()[0])
        cursor.execute(f"DELETE FROM {rollups.DAILY} WHERE day >= %s AND day < %s", [lower, upper])
        cursor.execute(f"DELETE FROM {rollups.HOURLY} WHERE hour >= %s AND hour < %s", [bound(lower), bound(upper)])
        cursor.execute(f"DELETE FROM {rollups.USER_DAILY} WHERE day >= %s AND day < %s", [lower, upper])
        cursor.execute(f"DROP TABLE {name}")
    return DropReport(month, rows, time.perf_counter() - started)


# --- conversion of an unpartitioned table ---------------------------------------------------


@dataclass
class ConvertReport:
    rows: int = 0
    batches: int = 0
    partitions: int = 0
    copy_seconds: float = 0.0
    index_seconds: float = 0.0
    swap_seconds: float = 0.0
    swap_rows: int = 0
    seconds: float = 0.0
    detail: str = ""


def _index_definitions(cursor, table: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """``(name, CREATE INDEX ...)`` of the table's indexes but the primary key, each with its own
    tablespace when it has one (``pg_get_indexdef`` leaves it out)."""
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid), t.spcname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_tablespace t ON t.oid = i.reltablespace "
        "WHERE x.indrelid = to_regclass(%s) AND NOT x.indisprimary ORDER BY i.relname",
        [table],
    )
    return [
        (name, definition + (f' TABLESPACE "{space}"' if space else ""))
        for name, definition, space in cursor.fetchall()
    ]


def _key_tablespace(cursor, table: str) -> str:  # type: ignore[no-untyped-def]
    """`` USING INDEX TABLESPACE x`` for a new primary key placed like the table's current one."""
    cursor.execute(
        "SELECT t.spcname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "LEFT JOIN pg_tablespace t ON t.oid = i.reltablespace WHERE x.indrelid = to_regclass(%s) AND x.indisprimary",
        [table],
    )
    row = cursor.fetchone()
    return f' USING INDEX TABLESPACE "{row[0]}"' if row and row[0] else ""


def _sum_check(cursor, table: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    cursor.execute(f"SELECT COUNT(*), COALESCE(SUM(id), 0) FROM {table}")
    count, total = cursor.fetchone()
    return int(count), int(total)


def convert(
    *, using: str, batch_size: int = 50_000, now: dt.datetime, ahead: int = 3, progress: Progress | None = None
) -> ConvertReport:
    """Convert the unpartitioned ``analytics_event`` to monthly partitions while it stays writable.

    1. Create ``analytics_event_partitioned`` (same columns) with a partition per month from the
       oldest event's to ``ahead`` months after ``now``, and the default partition.
    2. Copy by ascending id in batches of ``batch_size``, one short transaction each.
    3. Build the primary key ``(id, timestamp)`` and the indexes on the new table.
    4. One transaction holding ``ACCESS EXCLUSIVE`` on the old table: copy rows past the last
       copied id, copy again every id that a trigger logged as written, changed or deleted since
       step 1 (a writer committing late below a copied id, user deletion's updates), check count
       and sum of ids, drop the old table, rename, hand the id sequence and the rollup triggers over.
    The rollups counted the old table throughout (its triggers) and the copy fires none, so
    figures stay right across the swap.
    """
    connection = connections[using]
    report = ConvertReport()
    say = progress or (lambda _text: None)
    started = time.perf_counter()
    if connection.vendor != "postgresql":
        report.detail = "not PostgreSQL: one plain table"
        return report
    if is_partitioned(connection):
        report.detail = "already partitioned"
        return report
    with connection.cursor() as cursor:
        # an interrupted earlier run: start again (its log triggers are replaced below)
        cursor.execute(f"DROP TABLE IF EXISTS {NEW_PARENT}, {CHANGE_LOG} CASCADE")
        # Every id written, changed or deleted from now on is logged; the swap recopies them.
        cursor.execute(f"CREATE UNLOGGED TABLE {CHANGE_LOG} (id bigint NOT NULL)")
        for op, referencing, rows in (
            ("INSERT", "NEW TABLE AS new_rows", "SELECT id FROM new_rows"),
            (
                "UPDATE",
                "OLD TABLE AS old_rows NEW TABLE AS new_rows",
                "SELECT id FROM old_rows UNION SELECT id FROM new_rows",
            ),
            ("DELETE", "OLD TABLE AS old_rows", "SELECT id FROM old_rows"),
        ):
            function = f"{CHANGE_LOG}_{op.lower()}"
            cursor.execute(
                f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $body$ BEGIN "
                f"INSERT INTO {CHANGE_LOG} {rows}; RETURN NULL; END $body$"
            )
            cursor.execute(f"DROP TRIGGER IF EXISTS {function} ON {PARENT}")
            cursor.execute(
                f"CREATE TRIGGER {function} AFTER {op} ON {PARENT} REFERENCING {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
        cursor.execute(f'SELECT MIN("timestamp"), MAX(id) FROM {PARENT}')
        oldest, max_id = cursor.fetchone()
        cursor.execute(f'CREATE TABLE {NEW_PARENT} (LIKE {PARENT}) PARTITION BY RANGE ("timestamp")')
        cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {NEW_PARENT} DEFAULT")
        month = month_start(oldest or now)
        last = add_months(month_start(now), ahead)
        while month <= last:
            _create_month(cursor, month, NEW_PARENT, with_default=False)
            report.partitions += 1
            month = add_months(month, 1)
    say(f"created {NEW_PARENT} with {report.partitions} monthly partitions and a default one")

    copy_started = time.perf_counter()
    last_id = 0
    copy_sql = (
        f"WITH batch AS (SELECT * FROM {PARENT} WHERE id > %s ORDER BY id LIMIT %s), "
        f"copied AS (INSERT INTO {NEW_PARENT} SELECT * FROM batch RETURNING 1) "
        "SELECT (SELECT MAX(id) FROM batch), (SELECT COUNT(*) FROM copied)"
    )
    while max_id is not None and last_id < max_id:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            cursor.execute(copy_sql, [last_id, batch_size])
            batch_max, copied = cursor.fetchone()
        if not copied:
            break
        last_id = int(batch_max)
        report.rows += int(copied)
        report.batches += 1
        if report.batches % 20 == 0:
            say(f"copied {report.rows} rows (id <= {last_id})")
    report.copy_seconds = time.perf_counter() - copy_started
    say(f"copied {report.rows} rows in {report.batches} batches in {report.copy_seconds:.1f}s")

    index_started = time.perf_counter()
    with connection.cursor() as cursor:
        definitions = _index_definitions(cursor, PARENT)
        cursor.execute(
            f'ALTER TABLE {NEW_PARENT} ADD CONSTRAINT {NEW_PARENT}_pkey PRIMARY KEY (id, "timestamp")'
            + _key_tablespace(cursor, PARENT)
        )
        renames = []
        for name, definition in definitions:
            temporary = f"{name[:50]}_part"
            statement = re.sub(
                r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ",
                lambda m: f"CREATE {m[1] or ''}INDEX {temporary} ON {NEW_PARENT} ",
                definition,
            )
            cursor.execute(statement)
            renames.append((temporary, name))
    report.index_seconds = time.perf_counter() - index_started
    say(f"built the primary key and {len(definitions)} indexes in {report.index_seconds:.1f}s")

    swap_started = time.perf_counter()
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")
        cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(f"INSERT INTO {NEW_PARENT} SELECT * FROM {PARENT} WHERE id > %s", [last_id])
        report.swap_rows = max(cursor.rowcount, 0)
        # Rows written, changed or deleted since the copy began (a batch may have missed or copied
        # them before the change): copied again as they are now.
        cursor.execute(f"DELETE FROM {NEW_PARENT} WHERE id IN (SELECT id FROM {CHANGE_LOG}) AND id <= %s", [last_id])
        cursor.execute(
            f"INSERT INTO {NEW_PARENT} SELECT * FROM {PARENT} WHERE id IN (SELECT id FROM {CHANGE_LOG}) AND id <= %s",
            [last_id],
        )
        report.swap_rows += max(cursor.rowcount, 0)
        old_check, new_check = _sum_check(cursor, PARENT), _sum_check(cursor, NEW_PARENT)
        if old_check != new_check:
            raise RuntimeError(f"conversion check failed: old {old_check} != new {new_check}; nothing swapped")
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {PARENT}")
        next_id = int(cursor.fetchone()[0]) + 1
        cursor.execute(f"DROP TABLE {PARENT}")  # its triggers go with it
        cursor.execute(f"DROP TABLE {CHANGE_LOG}")
        for op in ("insert", "update", "delete"):
            cursor.execute(f"DROP FUNCTION {CHANGE_LOG}_{op}()")
        cursor.execute(f"ALTER TABLE {NEW_PARENT} RENAME TO {PARENT}")
        cursor.execute(f"ALTER TABLE {PARENT} RENAME CONSTRAINT {NEW_PARENT}_pkey TO {PARENT}_pkey")
        for temporary, name in renames:
            cursor.execute(f"ALTER INDEX {temporary} RENAME TO {name}")
        cursor.execute(f"CREATE SEQUENCE {PARENT}_id_seq START WITH {next_id} OWNED BY {PARENT}.id")
        cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id SET DEFAULT nextval('{PARENT}_id_seq')")
        for sql in rollups.pg_create_triggers_sql(PARENT):
            cursor.execute(sql)
        report.rows = new_check[0]
    report.swap_seconds = time.perf_counter() - swap_started
    report.seconds = time.perf_counter() - started
    say(f"swapped in {report.swap_seconds:.2f}s ({report.swap_rows} rows caught up)")
    return report


def to_plain(*, using: str) -> int:
    """Turn the partitioned table back into one plain table (the migration's reverse; it copies
    every row under an exclusive lock, meant for small tables). Returns the rows copied."""
    connection = connections[using]
    if not is_partitioned(connection):
        return 0
    plain = f"{PARENT}_plain"
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {PARENT} IN ACCESS EXCLUSIVE MODE")
        definitions = _index_definitions(cursor, PARENT)
        key_space = _key_tablespace(cursor, PARENT)
        cursor.execute(f"CREATE TABLE {plain} (LIKE {PARENT})")
        cursor.execute(f"INSERT INTO {plain} SELECT * FROM {PARENT}")
        rows = max(cursor.rowcount, 0)
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {PARENT}")
        next_id = int(cursor.fetchone()[0]) + 1
        cursor.execute(f"DROP TABLE {PARENT} CASCADE")
        cursor.execute(f"ALTER TABLE {plain} RENAME TO {PARENT}")
        cursor.execute(f"ALTER TABLE {PARENT} ADD CONSTRAINT {PARENT}_pkey PRIMARY KEY (id){key_space}")
        cursor.execute(
            f"ALTER TABLE {PARENT} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {next_id})"
        )
        for _name, definition in definitions:
            cursor.execute(re.sub(r" ON (ONLY )?\S+ ", f" ON {PARENT} ", definition, count=1))
    return rows
