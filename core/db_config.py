"""Build ``DATABASES`` from the environment (12-factor).

Each primary alias comes from its URL variable (see :mod:`core.aliases`); replicas of a primary come
from ``<PRIMARY>_REPLICA_URLS`` (comma list) and become ``<alias>_replica_<n>``. With no URL set an
alias is an SQLite file under ``var/``. Engine options are set per engine here, in one place:

- PostgreSQL: psycopg 3, one connection per thread kept for ``DB_CONN_MAX_AGE`` with
  ``CONN_HEALTH_CHECKS`` (a socket poll, a round trip every ``DB_CHECK_AFTER_IDLE_SECONDS``:
  core/db_backends/postgresql/base.py), or Django's native pool with ``DB_POOL=1``
  (``OPTIONS["pool"]``); read committed on the analytics alias through ``OPTIONS["isolation_level"]``.
- MySQL/MariaDB: ``charset=utf8mb4`` and a strict ``sql_mode`` through ``init_command``.
- SQLite: WAL journal, a busy timeout and ``transaction_mode="IMMEDIATE"``; kept open per
  thread for ``DB_CONN_MAX_AGE``.

Docs: https://docs.djangoproject.com/en/5.2/ref/databases/
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core import aliases


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from exc


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw == "":
        return default
    return raw in {"1", "true", "yes", "on"}


def _postgresql_options(alias: str, environ: Mapping[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "connect_timeout": _int(environ, "DB_CONNECT_TIMEOUT", 3),
        "application_name": f"switchyard:{alias}",
    }
    if _bool(environ, "DB_POOL", False):
        options["pool"] = {
            "min_size": _int(environ, "DB_POOL_MIN_SIZE", 1),
            "max_size": _int(environ, "DB_POOL_MAX_SIZE", 8),
            "timeout": _float(environ, "DB_POOL_TIMEOUT", 5.0),
            # Idle connections above min_size are closed after this many seconds.
            "max_idle": _float(environ, "DB_POOL_MAX_IDLE", 300.0),
        }
    if aliases.primary_of(alias) == aliases.ANALYTICS:
        from psycopg import IsolationLevel

        options["isolation_level"] = IsolationLevel.READ_COMMITTED
    return options


def _mysql_options(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "charset": "utf8mb4",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        "connect_timeout": _int(environ, "DB_CONNECT_TIMEOUT", 3),
    }


def _sqlite_options(environ: Mapping[str, str]) -> dict[str, Any]:
    busy_ms = _int(environ, "SQLITE_BUSY_TIMEOUT_MS", 5000)
    return {
        "transaction_mode": "IMMEDIATE",
        "timeout": busy_ms / 1000,
        "init_command": (f"PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout={busy_ms};"),
    }


def _configure(alias: str, url: str, environ: Mapping[str, str]) -> dict[str, Any]:
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url))
    except ValueError as exc:  # unknown scheme or malformed URL
        raise ImproperlyConfigured(f"Bad database URL for {alias}: {exc}") from None
    engine = config["ENGINE"]
    config.setdefault("OPTIONS", {})
    config["CONN_MAX_AGE"] = 0
    config["CONN_HEALTH_CHECKS"] = True
    config["ATOMIC_REQUESTS"] = False
    if engine == "django.db.backends.postgresql":
        config["ENGINE"] = "core.db_backends.postgresql"  # Django's, with a connection circuit breaker
        config["OPTIONS"].update(_postgresql_options(alias, environ))
        if "pool" not in config["OPTIONS"]:
            config["CONN_MAX_AGE"] = _int(environ, "DB_CONN_MAX_AGE", 60)
        if _bool(environ, "DB_PGBOUNCER", False):
            # Behind PgBouncer in transaction mode (docs/operations.md): consecutive transactions
            # of one client may run on different server sessions, so nothing may outlive one.
            # Django's iterator() otherwise uses WITH HOLD cursors across transactions, and
            # psycopg would prepare statements on one server session and run them on another.
            if config["OPTIONS"].get("server_side_binding"):
                raise ImproperlyConfigured(f"{alias}: server_side_binding cannot be used with DB_PGBOUNCER=1")
            config["DISABLE_SERVER_SIDE_CURSORS"] = True
            config["OPTIONS"]["prepare_threshold"] = None
    elif engine == "django.db.backends.mysql":
        config["ENGINE"] = "core.db_backends.mysql"  # Django's, with a connection circuit breaker
        config["OPTIONS"].update(_mysql_options(environ))
        config["CONN_MAX_AGE"] = _int(environ, "DB_CONN_MAX_AGE", 60)
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    elif engine == "django.db.backends.sqlite3":
        config["OPTIONS"].update(_sqlite_options(environ))
        # Kept open per thread like MariaDB's: opening one runs the PRAGMAs and registers Django's
        # SQL functions (about 0.3 ms, more than a cache read), and a file handle has no server
        # to tie up.
        config["CONN_MAX_AGE"] = _int(environ, "DB_CONN_MAX_AGE", 60)
        name = Path(str(config["NAME"]))
        # Test databases are files too (not in-memory), so that threads share them as in production.
        config["TEST"] = {"NAME": str(name.with_name(f"test_{name.name}"))}
    # No alias's test database depends on another's creation order (Django's default makes every
    # alias depend on "default", which breaks test runs that set up only some aliases).
    config.setdefault("TEST", {})["DEPENDENCIES"] = []
    return config


def private_file(path: Path) -> None:
    """Create ``path`` empty and readable by its owner only (0600) when it does not exist: SQLite
    then gives its -wal and -shm files the same mode. An existing file is left as it is."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass


def build_databases(environ: Mapping[str, str], var_dir: Path) -> dict[str, dict[str, Any]]:
    """Return the ``DATABASES`` setting for ``environ``; SQLite files live in ``var_dir``."""
    databases: dict[str, dict[str, Any]] = {}
    for primary in aliases.PRIMARIES:
        url = environ.get(aliases.URL_ENV[primary], "").strip()
        if not url:
            var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            private_file(var_dir / aliases.EMBEDDED_FILE[primary])
            url = f"sqlite:///{var_dir / aliases.EMBEDDED_FILE[primary]}"
        databases[primary] = _configure(primary, url, environ)
        replica_urls = environ.get(aliases.replica_env(primary), "")
        for index, replica_url in enumerate((u.strip() for u in replica_urls.split(",") if u.strip()), start=1):
            alias = aliases.replica_alias(primary, index)
            config = _configure(alias, replica_url, environ)
            # A replica holds the primary's data. In tests, REPLICA_TEST_MIRROR=1 points it at the
            # primary's test database (a real streaming replica follows the primary on its own);
            # otherwise it gets its own test database (a stand-in replica).
            if _bool(environ, "REPLICA_TEST_MIRROR", False):
                config.setdefault("TEST", {})["MIRROR"] = primary
            databases[alias] = config
    return databases


def monthly_databases(
    environ: Mapping[str, str], url_template: str, first_month: str, alias_pattern: str
) -> dict[str, dict[str, Any]]:
    """One database per month from ``first_month`` (``YYYY-MM``) to the current one (UTC), each at
    ``url_template`` formatted with ``year`` and ``month``, named by ``alias_pattern``."""
    if not url_template and not first_month:
        return {}
    if not url_template or not first_month:
        raise ImproperlyConfigured("TIMESERIES_DATABASE_URL and TIMESERIES_FIRST_MONTH go together.")
    try:
        year, month = (int(part) for part in first_month.split("-"))
        if not 1 <= month <= 12 or year < 2000:
            raise ValueError(first_month)
    except ValueError:
        raise ImproperlyConfigured("TIMESERIES_FIRST_MONTH must be YYYY-MM (2000-01 or later).") from None
    today = datetime.datetime.now(datetime.UTC)
    databases: dict[str, dict[str, Any]] = {}
    while (year, month) <= (today.year, today.month):
        try:
            url = url_template.format(year=year, month=month)
            alias = alias_pattern.format(year=year, month=month)
        except (KeyError, IndexError, ValueError) as exc:
            raise ImproperlyConfigured(f"Bad TIMESERIES_DATABASE_URL or TIMESERIES_ALIAS_PATTERN: {exc}") from None
        databases[alias] = _configure(alias, url, environ)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return databases


def replicas_of(databases: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Map each primary alias to its replica aliases, in configuration order.

    Asked on every routed read: worked out once per set of alias names (the answer depends on
    the names only)."""
    names = tuple(databases)
    known = _replicas_by_names.get(names)
    if known is None:
        result: dict[str, list[str]] = {}
        for alias in names:
            primary = aliases.primary_of(alias)
            if primary != alias:
                result.setdefault(primary, []).append(alias)
        known = _replicas_by_names[names] = {primary: tuple(replicas) for primary, replicas in result.items()}
    return known


_replicas_by_names: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {}
