"""The legacy ``customers`` table: the MySQL file we ship, and a guard against clobbering a real one.

We do not own this table. For development and tests, :func:`ensure_customers_table` creates it
from ``sql/customers.mysql.sql`` (translated for SQLite when legacy_db is the embedded default);
it refuses when a ``customers`` table with other columns is already there.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.db import connections

from core import aliases

SQL_FILE = Path(__file__).with_name("sql") / "customers.mysql.sql"
EXPECTED_COLUMNS = ("customer_id", "customer_name", "customer_email", "created_date")

SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS customers (
  customer_id INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_name VARCHAR(100) NOT NULL,
  customer_email VARCHAR(100) NOT NULL,
  created_date DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""


class LegacySchemaMismatch(Exception):
    """A ``customers`` table exists with columns other than the ones we expect."""


def mysql_statements() -> list[str]:
    text = re.sub(r"^\s*--.*$", "", SQL_FILE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [stmt.strip() for stmt in text.split(";") if stmt.strip()]


def existing_columns(alias: str = aliases.LEGACY) -> tuple[str, ...] | None:
    connection = connections[alias]
    with connection.cursor() as cursor:
        if "customers" not in connection.introspection.table_names(cursor):
            return None
        description = connection.introspection.get_table_description(cursor, "customers")
    return tuple(col.name for col in description)


def ensure_customers_table(alias: str = aliases.LEGACY) -> bool:
    """Create ``customers`` on ``alias`` when absent. Returns True when it was created."""
    columns = existing_columns(alias)
    if columns is not None:
        if sorted(columns) != sorted(EXPECTED_COLUMNS):
            raise LegacySchemaMismatch(
                f"{alias} already has a 'customers' table with columns {', '.join(columns)}; "
                f"expected {', '.join(EXPECTED_COLUMNS)}. Refusing to touch it."
            )
        return False
    connection = connections[alias]
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            for statement in mysql_statements():
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            cursor.execute(SQLITE_DDL)
        else:
            raise LegacySchemaMismatch(f"legacy_db on {connection.vendor} is not supported; use MySQL/MariaDB")
    return True
