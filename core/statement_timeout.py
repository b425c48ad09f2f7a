"""A time limit on the queries a caller can shape (lists, their COUNT(*) and their search).

:func:`statement_timeout` runs a block of queries on one alias with a per-statement limit, and
turns a statement stopped by it into :class:`core.errors.QueryTimeout` (the API answers a 503
``query-timeout`` with ``Retry-After``). The connection stays usable afterwards.

- PostgreSQL: the block runs in a transaction on the alias that begins with ``SET LOCAL
  statement_timeout``; the setting ends with the transaction, so it never outlives the block on
  the server connection, through PgBouncer in transaction mode too (a session-level ``SET`` would
  stay on that server connection for whichever client gets it next). Inside a transaction the
  caller already holds, the block is a savepoint and the previous value is put back after it.
  https://www.postgresql.org/docs/15/runtime-config-client.html#GUC-STATEMENT-TIMEOUT
- MariaDB: every ``SELECT`` of the block is sent as ``SET STATEMENT max_statement_time=<s> FOR
  SELECT ...`` (through Django's public ``execute_wrapper``): the limit belongs to the statement,
  nothing is left on the session. MySQL: the ``MAX_EXECUTION_TIME(<ms>)`` optimizer hint, the same
  way. https://mariadb.com/kb/en/aborting-statements/ ,
  https://dev.mysql.com/doc/refman/8.0/en/optimizer-hints.html#optimizer-hints-execution-time
- SQLite (the embedded development mode): no limit; the block runs as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, connections, transaction

from core.errors import QueryTimeout

#: SQLSTATE of a PostgreSQL statement cancelled by statement_timeout (query_canceled).
PG_QUERY_CANCELED = "57014"
#: MariaDB's ER_STATEMENT_TIMEOUT and MySQL's ER_QUERY_TIMEOUT.
MYSQL_TIMEOUT_CODES = frozenset({1969, 3024})


@contextmanager
def statement_timeout(alias: str, milliseconds: int) -> Iterator[None]:
    """Run the block's queries on ``alias`` with each statement limited to ``milliseconds``
    (0: no limit). A statement that runs out raises :class:`QueryTimeout` naming the alias."""
    connection = connections[alias]
    if milliseconds <= 0 or connection.vendor not in ("postgresql", "mysql"):
        yield
        return
    try:
        if connection.vendor == "postgresql":
            with _postgresql(alias, int(milliseconds)):
                yield
        else:
            with connection.execute_wrapper(_mysql_limit(connection, int(milliseconds))):
                yield
    except DatabaseError as exc:
        if is_timeout(connection.vendor, exc):
            raise QueryTimeout(alias, milliseconds) from exc
        raise


@contextmanager
def _postgresql(alias: str, milliseconds: int) -> Iterator[None]:
    connection = connections[alias]
    nested = connection.in_atomic_block
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            previous = None
            if nested:
                cursor.execute("SELECT current_setting('statement_timeout')")
                previous = cursor.fetchone()[0]
            cursor.execute(f"SET LOCAL statement_timeout = {milliseconds}")
        yield
        if previous is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])


def _mysql_limit(connection: Any, milliseconds: int) -> Callable[..., Any]:
    if connection.mysql_is_mariadb:
        prefix = f"SET STATEMENT max_statement_time={milliseconds / 1000:.3f} FOR "

        def limit(sql: str) -> str:
            return prefix + sql
    else:
        hint = f"SELECT /*+ MAX_EXECUTION_TIME({milliseconds}) */"

        def limit(sql: str) -> str:
            return hint + sql[len("SELECT") :]

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict) -> Any:
        if sql.lstrip()[:6].upper() == "SELECT":
            sql = limit(sql.lstrip())
        return execute(sql, params, many, context)

    return wrapper


def is_timeout(vendor: str, exc: BaseException) -> bool:
    """Whether ``exc`` (a Django database error) is a statement stopped by its time limit."""
    if vendor == "postgresql":
        return getattr(exc.__cause__, "sqlstate", None) == PG_QUERY_CANCELED
    if vendor == "mysql":
        return bool(exc.args) and exc.args[0] in MYSQL_TIMEOUT_CODES
    return False
