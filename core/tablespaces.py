"""PostgreSQL tablespaces per database alias.

Django's ``DEFAULT_TABLESPACE`` / ``DEFAULT_INDEX_TABLESPACE`` are global, but each Switchyard
database may live on its own server with its own disks. Per primary alias, from the environment
(``<PREFIX>`` is the alias's URL variable without ``_URL``: ``DATABASE``, ``USERS_DATABASE``,
``ANALYTICS_DATABASE``, ...):

- ``<PREFIX>_DEFAULT_TABLESPACE``: tables (and, unless the next one is set, indexes) of that
  database. Applied by the server itself: the connection sets PostgreSQL's ``default_tablespace``
  (``OPTIONS["options"] = "-c default_tablespace=..."``), so every ``CREATE TABLE`` / ``CREATE
  INDEX`` without an explicit ``TABLESPACE`` lands there, raw SQL migrations included, and the
  models and migrations stay free of deployment details (no ``db_tablespace`` in model state, so
  ``makemigrations`` never sees a change between environments).
- ``<PREFIX>_DEFAULT_INDEX_TABLESPACE``: indexes of that database (e.g. the analytics indexes on
  their own disk). While ``migrate`` runs on an alias (between ``pre_migrate`` and
  ``post_migrate``), Django's ``DEFAULT_INDEX_TABLESPACE`` is set to that alias's value, so the
  schema editor writes ``TABLESPACE ...`` / ``USING INDEX TABLESPACE ...`` on its indexes, primary
  keys and unique constraints. Indexes created by hand-written SQL (``RunSQL``) follow
  ``default_tablespace`` instead.

Engines without tablespaces (SQLite, MySQL/MariaDB in Django) ignore both, as Django ignores
``DEFAULT_TABLESPACE`` there. The tablespaces must exist on the server (``scripts/tablespace``).
Docs: https://docs.djangoproject.com/en/5.2/topics/db/tablespaces/ ,
https://www.postgresql.org/docs/15/runtime-config-client.html#GUC-DEFAULT-TABLESPACE
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS

from core import aliases

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def env_names(primary: str) -> tuple[str, str]:
    """``analytics_db`` -> ``("ANALYTICS_DATABASE_DEFAULT_TABLESPACE", "ANALYTICS_DATABASE_DEFAULT_INDEX_TABLESPACE")``."""
    prefix = aliases.URL_ENV[primary].removesuffix("_URL")
    return f"{prefix}_DEFAULT_TABLESPACE", f"{prefix}_DEFAULT_INDEX_TABLESPACE"


def _name(environ: Mapping[str, str], variable: str) -> str:
    value = environ.get(variable, "").strip()
    if value and not _NAME.fullmatch(value):
        raise ImproperlyConfigured(
            f"{variable} must be a plain lower-case PostgreSQL identifier (a-z, 0-9, _), got {value!r}"
        )
    return value


def _supports(database: Mapping[str, Any]) -> bool:
    return "postgresql" in str(database.get("ENGINE", ""))


def from_env(
    environ: Mapping[str, str], databases: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, str], dict[str, str]]:
    """Per primary alias on PostgreSQL: (table tablespaces, index tablespaces) that are set."""
    tables: dict[str, str] = {}
    indexes: dict[str, str] = {}
    for primary in aliases.PRIMARIES:
        table_var, index_var = env_names(primary)
        table, index = _name(environ, table_var), _name(environ, index_var)
        if primary not in databases or not _supports(databases[primary]):
            continue
        if table:
            tables[primary] = table
        if index:
            indexes[primary] = index
    return tables, indexes


def apply(databases: MutableMapping[str, dict[str, Any]], tables: Mapping[str, str]) -> None:
    """Make each connection of a primary with a table tablespace set ``default_tablespace``."""
    for alias, tablespace in tables.items():
        options = databases[alias].setdefault("OPTIONS", {})
        setting = f"-c default_tablespace={tablespace}"
        options["options"] = f"{options['options']} {setting}" if options.get("options") else setting


def _before_migrate(sender: Any, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    from django.conf import settings

    settings.DEFAULT_INDEX_TABLESPACE = settings.DATABASE_INDEX_TABLESPACES.get(
        using, settings.BASE_DEFAULT_INDEX_TABLESPACE
    )


def _after_migrate(sender: Any, **kwargs: Any) -> None:
    from django.conf import settings

    settings.DEFAULT_INDEX_TABLESPACE = settings.BASE_DEFAULT_INDEX_TABLESPACE


def connect() -> None:
    """Install the migrate hooks (from ``CoreConfig.ready``). Without index tablespaces they only
    set ``DEFAULT_INDEX_TABLESPACE`` to the value it already has."""
    from django.db.models.signals import post_migrate, pre_migrate

    pre_migrate.connect(_before_migrate, dispatch_uid="switchyard-index-tablespace-before")
    post_migrate.connect(_after_migrate, dispatch_uid="switchyard-index-tablespace-after")
