"""What the staff view of the databases shows: per alias, where it is, whether it answers, how big
it is, its connection settings (never a password), and the slowest statements from
``pg_stat_statements`` where PostgreSQL has it.

Each alias is probed in the calling thread, one after the other; a database that is down costs at
most its connect timeout (``DB_CONNECT_TIMEOUT``) and is reported as not usable, never raised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from core import aliases
from core.services.maintenance import probe

#: OPTIONS keys shown as connection settings; anything else (passwords, TLS keys, service files)
#: is left out.
SHOWN_OPTIONS = ("connect_timeout", "application_name", "charset", "transaction_mode", "timeout", "isolation_level")
POOL_OPTIONS = ("min_size", "max_size", "timeout", "max_idle", "max_lifetime", "max_waiting")
SLOW_ORDER = {"mean": "mean_exec_time", "total": "total_exec_time", "calls": "calls"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connection_settings(alias: str) -> dict[str, Any]:
    config = settings.DATABASES[alias]
    options = config.get("OPTIONS", {})
    shown: dict[str, Any] = {}
    for name in SHOWN_OPTIONS:
        if name in options:
            value = options[name]
            shown[name] = value.name.lower() if hasattr(value, "name") else value
    pool = options.get("pool")
    return {
        "conn_max_age": config.get("CONN_MAX_AGE"),
        "conn_health_checks": bool(config.get("CONN_HEALTH_CHECKS")),
        "options": shown,
        "pool": {k: v for k, v in pool.items() if k in POOL_OPTIONS}
        if isinstance(pool, dict)
        else ({} if pool is True else None),
    }


def _size_bytes(alias: str) -> int | None:
    connection = connections[alias]
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        return os.path.getsize(name) if os.path.exists(name) else None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_database_size(current_database())")
        elif connection.vendor == "mysql":
            cursor.execute(
                "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables "
                "WHERE table_schema = DATABASE()"
            )
        else:
            return None
        return int(cursor.fetchone()[0])


@dataclass
class DatabaseInfo:
    alias: str
    primary: str
    role: str
    vendor: str
    host: str | None
    port: int | None
    name: str
    usable: bool
    size_bytes: int | None
    error: str
    connection: dict[str, Any] = field(default_factory=dict)


def database_info(alias: str) -> DatabaseInfo:
    connection = connections[alias]
    config = connection.settings_dict
    usable, size, error = False, None, ""
    try:
        probe(alias)  # a fresh connection: a down database answers at once, not after the pool's wait
        usable = True
        size = _size_bytes(alias)
    except (DatabaseError, OSError) as exc:
        error = _first_line(exc)
        connection.close_if_unusable_or_obsolete()
    port = config.get("PORT")
    primary = aliases.primary_of(alias)
    return DatabaseInfo(
        alias=alias,
        primary=primary,
        role="primary" if primary == alias else "replica",
        vendor=connection.vendor,
        host=config.get("HOST") or None,
        port=int(port) if port else None,
        name=os.path.basename(str(config["NAME"])) if connection.vendor == "sqlite" else str(config["NAME"]),
        usable=usable,
        size_bytes=size,
        error=error,
        connection=connection_settings(alias),
    )


def databases_overview() -> list[DatabaseInfo]:
    return [database_info(alias) for alias in settings.DATABASES]


@dataclass
class SlowQueries:
    alias: str
    vendor: str
    available: bool
    detail: str
    queries: list[dict[str, Any]] = field(default_factory=list)


def slow_queries(alias: str, *, limit: int = 20, order: str = "mean") -> SlowQueries:
    """The slowest statements run on ``alias``'s database, from ``pg_stat_statements`` (PostgreSQL 13+ columns)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return SlowQueries(
            alias,
            connection.vendor,
            False,
            f"not available: pg_stat_statements is PostgreSQL only ({connection.vendor})",
        )
    column = SLOW_ORDER[order]
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            if cursor.fetchone() is None:
                return SlowQueries(
                    alias,
                    connection.vendor,
                    False,
                    "not available: the pg_stat_statements extension is not installed in this database "
                    "(CREATE EXTENSION pg_stat_statements; see scripts/enable-pg-stat-statements)",
                )
            cursor.execute(
                "SELECT query, calls, total_exec_time, mean_exec_time, rows FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                f"ORDER BY {column} DESC LIMIT %s",
                [limit],
            )
            rows = cursor.fetchall()
    except DatabaseError as exc:
        return SlowQueries(alias, connection.vendor, False, f"not available: {_first_line(exc)}")
    return SlowQueries(
        alias,
        connection.vendor,
        True,
        f"from pg_stat_statements, by {column} descending",
        [
            {
                "query": q,
                "calls": int(calls),
                "total_exec_time_ms": float(total),
                "mean_exec_time_ms": float(mean),
                "rows": int(n),
            }
            for q, calls, total, mean, n in rows
        ],
    )


def slow_query_aliases() -> list[str]:
    """Aliases a slow-query report covers: all of them (those without PostgreSQL say so)."""
    return list(settings.DATABASES)
