"""Small helpers for the aggregates' hand-written SQL: parameters and values across vendors."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

from django.db import connections
from django.utils.dateparse import parse_datetime


def datetime_param(alias: str, value: dt.datetime) -> Any:
    """``value`` as the driver of ``alias`` wants it for a comparison with a DateTimeField column."""
    return connections[alias].ops.adapt_datetimefield_value(value)


def within_budget(sql: str, deadline: float) -> str:
    """``sql`` behind PostgreSQL's ``SET LOCAL statement_timeout`` for what is left until
    ``deadline`` (``time.monotonic()``): sent as one simple query, the setting ends with the
    statement's implicit transaction. The caller moves past the SET's empty result."""
    millis = max(1, int((deadline - time.monotonic()) * 1000))
    return f"SET LOCAL statement_timeout = {millis}; {sql}"


def iso(value: Any) -> str | None:
    """A datetime read through a raw cursor as ISO 8601 in UTC with ``Z`` (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        value = parsed
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    else:
        value = value.astimezone(dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def in_clause(alias: str, column: str, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """``column IN (...)`` for ``ids``, parameterised (``= ANY(%s)`` with one array on PostgreSQL)."""
    if connections[alias].vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    if not ids:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


#: Largest id a BIGINT column holds; a larger one cannot name a row (and must not reach the SQL).
MAX_ID = 2**63 - 1


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID
