"""Rollups of analytics events, kept by the database in the transaction of every write.

``analytics_daily_count`` (day, event_type) and ``analytics_user_daily_count`` (user_id, day,
event_type) hold event counts per UTC day; ``analytics_hourly_count`` (hour, event_type) per UTC
hour, so that a window starting at any minute reads at most an hour of raw events at each edge. Triggers on ``analytics_event`` add and subtract:

- PostgreSQL: statement-level ``AFTER INSERT / UPDATE / DELETE`` triggers with transition tables,
  so a ``COPY`` of 10,000 events is one grouped upsert per rollup, not 10,000. On a partitioned
  table they sit on the parent and see the rows of every partition; statements aimed at one
  partition directly (moving rows out of the default partition, the converter's copy) do not fire
  them, which is what those maintenance steps want (they change no figure).
- SQLite: row-level triggers doing the same per row.

Being in the writer's transaction, a rollup can neither miss an event nor count one twice: the
event and its count commit or roll back together. Keys are upserted in sorted order, so two
writers lock shared rollup rows in the same order (no deadlock between them). Dropping a whole
partition fires no trigger: retention subtracts the month's rollup rows in the same transaction
(core/analytics/partitions.py).
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

DAILY = "analytics_daily_count"
HOURLY = "analytics_hourly_count"
USER_DAILY = "analytics_user_daily_count"
EVENTS = "analytics_event"

_PG_DAY = "(({t}.\"timestamp\" AT TIME ZONE 'UTC')::date)"
_PG_HOUR = "(date_trunc('hour', {t}.\"timestamp\" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
_SQLITE_HOUR = "strftime('%Y-%m-%d %H:00:00', {t}.\"timestamp\")"


def _pg_delta_sql(rows_sql: str) -> str:
    """Upsert the signed counts of ``rows_sql`` (columns user_id, day, hour, event_type, d) into
    the rollups, then delete the keys it brought to zero."""
    return f"""
    INSERT INTO {HOURLY} AS r (hour, event_type, event_count)
        SELECT hour, event_type, SUM(d) FROM ({rows_sql}) AS x
        GROUP BY hour, event_type HAVING SUM(d) <> 0 ORDER BY hour, event_type
    ON CONFLICT (hour, event_type) DO UPDATE SET event_count = r.event_count + EXCLUDED.event_count;
    INSERT INTO {DAILY} AS r (day, event_type, event_count)
        SELECT day, event_type, SUM(d) FROM ({rows_sql}) AS x
        GROUP BY day, event_type HAVING SUM(d) <> 0 ORDER BY day, event_type
    ON CONFLICT (day, event_type) DO UPDATE SET event_count = r.event_count + EXCLUDED.event_count;
    INSERT INTO {USER_DAILY} AS r (user_id, day, event_type, event_count)
        SELECT user_id, day, event_type, SUM(d) FROM ({rows_sql}) AS x WHERE user_id IS NOT NULL
        GROUP BY user_id, day, event_type HAVING SUM(d) <> 0 ORDER BY user_id, day, event_type
    ON CONFLICT (user_id, day, event_type) DO UPDATE SET event_count = r.event_count + EXCLUDED.event_count;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM {HOURLY} r USING (SELECT DISTINCT hour, event_type FROM ({rows_sql}) AS x) k
            WHERE r.hour = k.hour AND r.event_type = k.event_type AND r.event_count = 0;
        DELETE FROM {DAILY} r USING (SELECT DISTINCT day, event_type FROM ({rows_sql}) AS x) k
            WHERE r.day = k.day AND r.event_type = k.event_type AND r.event_count = 0;
        DELETE FROM {USER_DAILY} r
            USING (SELECT DISTINCT user_id, day, event_type FROM ({rows_sql}) AS x WHERE user_id IS NOT NULL) k
            WHERE r.user_id = k.user_id AND r.day = k.day AND r.event_type = k.event_type AND r.event_count = 0;
    END IF;
    """


def _rows(table: str, sign: int) -> str:
    return (
        f"SELECT {table}.user_id, {_PG_DAY.format(t=table)} AS day, {_PG_HOUR.format(t=table)} AS hour, "
        f"{table}.event_type, {sign} AS d FROM {table}"
    )


PG_FUNCTIONS = {
    "analytics_rollup_insert": _pg_delta_sql(_rows("new_rows", 1)),
    "analytics_rollup_delete": _pg_delta_sql(_rows("old_rows", -1)),
    "analytics_rollup_update": _pg_delta_sql(f"{_rows('new_rows', 1)} UNION ALL {_rows('old_rows', -1)}"),
}
PG_TRIGGERS = {
    "analytics_rollup_insert": ("INSERT", "REFERENCING NEW TABLE AS new_rows"),
    "analytics_rollup_delete": ("DELETE", "REFERENCING OLD TABLE AS old_rows"),
    "analytics_rollup_update": ("UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
}


def pg_create_functions_sql() -> list[str]:
    return [
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $body$\n"
        f"BEGIN\n{body}\nRETURN NULL;\nEND\n$body$"
        for name, body in PG_FUNCTIONS.items()
    ]


def pg_create_triggers_sql(table: str = EVENTS) -> list[str]:
    return [
        f"CREATE TRIGGER {name} AFTER {op} ON {table} {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        for name, (op, referencing) in PG_TRIGGERS.items()
    ]


def pg_drop_triggers_sql(table: str = EVENTS) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name} ON {table}" for name in PG_TRIGGERS]


def _sqlite_add(row: str, sign: int) -> list[str]:
    day = f'date({row}."timestamp")'
    hour = _SQLITE_HOUR.format(t=row)
    return [
        f"INSERT INTO {HOURLY} (hour, event_type, event_count) VALUES ({hour}, {row}.event_type, {sign}) "
        f"ON CONFLICT (hour, event_type) DO UPDATE SET event_count = event_count + ({sign});",
        f"INSERT INTO {DAILY} (day, event_type, event_count) VALUES ({day}, {row}.event_type, {sign}) "
        f"ON CONFLICT (day, event_type) DO UPDATE SET event_count = event_count + ({sign});",
        f"INSERT INTO {USER_DAILY} (user_id, day, event_type, event_count) "
        f"SELECT {row}.user_id, {day}, {row}.event_type, {sign} WHERE {row}.user_id IS NOT NULL "
        f"ON CONFLICT (user_id, day, event_type) DO UPDATE SET event_count = event_count + ({sign});",
    ]


def _sqlite_subtract(row: str) -> list[str]:
    """An UPDATE, not an upsert: a key with no rollup row (its rows already deleted, as Django's
    flush does table by table) is left alone rather than given a negative count."""
    day = f'date({row}."timestamp")'
    hour = _SQLITE_HOUR.format(t=row)
    return [
        f"UPDATE {HOURLY} SET event_count = event_count - 1 WHERE hour = {hour} AND event_type = {row}.event_type;",
        f"UPDATE {DAILY} SET event_count = event_count - 1 WHERE day = {day} AND event_type = {row}.event_type;",
        f"UPDATE {USER_DAILY} SET event_count = event_count - 1 WHERE user_id = {row}.user_id AND day = {day} "
        f"AND event_type = {row}.event_type;",
    ]


def _sqlite_prune(row: str) -> list[str]:
    day = f'date({row}."timestamp")'
    hour = _SQLITE_HOUR.format(t=row)
    return [
        f"DELETE FROM {HOURLY} WHERE hour = {hour} AND event_type = {row}.event_type AND event_count = 0;",
        f"DELETE FROM {DAILY} WHERE day = {day} AND event_type = {row}.event_type AND event_count = 0;",
        f"DELETE FROM {USER_DAILY} WHERE user_id = {row}.user_id AND day = {day} "
        f"AND event_type = {row}.event_type AND event_count = 0;",
    ]


def sqlite_triggers_sql() -> list[str]:
    bodies = {
        "analytics_rollup_insert": ("INSERT", _sqlite_add("NEW", 1)),
        "analytics_rollup_delete": ("DELETE", _sqlite_subtract("OLD") + _sqlite_prune("OLD")),
        "analytics_rollup_update": ("UPDATE", _sqlite_subtract("OLD") + _sqlite_add("NEW", 1) + _sqlite_prune("OLD")),
    }
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {op} ON {EVENTS} FOR EACH ROW BEGIN\n" + "\n".join(body) + "\nEND"
        for name, (op, body) in bodies.items()
    ]


def sqlite_drop_triggers_sql() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name}" for name in PG_TRIGGERS]


def rebuild_sql(vendor: str, table: str = EVENTS) -> list[str]:
    """Recount both rollups from ``table`` (the caller holds a lock that keeps writers out)."""
    day = _PG_DAY.format(t=table) if vendor == "postgresql" else f'date({table}."timestamp")'
    hour = (_PG_HOUR if vendor == "postgresql" else _SQLITE_HOUR).format(t=table)
    return [
        f"DELETE FROM {HOURLY}",
        f"INSERT INTO {HOURLY} (hour, event_type, event_count) "
        f"SELECT {hour}, event_type, COUNT(*) FROM {table} GROUP BY 1, 2",
        f"DELETE FROM {DAILY}",
        f"DELETE FROM {USER_DAILY}",
        f"INSERT INTO {DAILY} (day, event_type, event_count) "
        f"SELECT {day}, event_type, COUNT(*) FROM {table} GROUP BY 1, 2",
        f"INSERT INTO {USER_DAILY} (user_id, day, event_type, event_count) "
        f"SELECT user_id, {day}, event_type, COUNT(*) FROM {table} WHERE user_id IS NOT NULL GROUP BY 1, 2, 3",
    ]


def install(connection: BaseDatabaseWrapper) -> None:
    """Create the triggers and count what is there, in the caller's transaction (the migration's).

    On PostgreSQL the events table is locked against writes (SHARE) first, so no event is written
    between the count and the triggers taking over."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {EVENTS} IN SHARE MODE")
            for sql in pg_create_functions_sql():
                cursor.execute(sql)
            for sql in pg_drop_triggers_sql() + pg_create_triggers_sql():
                cursor.execute(sql)
        else:
            for sql in sqlite_drop_triggers_sql() + sqlite_triggers_sql():
                cursor.execute(sql)
        for sql in rebuild_sql(connection.vendor):
            cursor.execute(sql)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        for sql in pg_drop_triggers_sql() if connection.vendor == "postgresql" else sqlite_drop_triggers_sql():
            cursor.execute(sql)
