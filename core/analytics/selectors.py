"""Reads of analytics events (analytics_db).

Counts come from the daily rollups (core/analytics/rollups.py) for the whole UTC days of a window
and from the raw events only for the part of a day at either edge of a window that does not start
or end at midnight (less than a day of events each): their cost does not grow with the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import QuerySet

from core.analytics import rollups
from core.analytics.models import AnalyticsEvent
from core.errors import NotFound
from core.services.sql import datetime_param, in_clause

Window = tuple[dt.datetime | None, dt.datetime | None]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def window_parts(since: dt.datetime | None, until: dt.datetime | None) -> tuple[
    tuple[dt.date | None, dt.date | None] | None, list[Window]
]:
    """Split ``[since, until)`` into whole UTC days ``[first, end)`` (``None``: unbounded; the
    pair is ``None`` when no whole day is inside) and the raw time ranges at its edges."""
    first = end = None
    if since is not None:
        day = since.astimezone(dt.timezone.utc).date()
        first = day if since == _midnight(day) else day + dt.timedelta(days=1)
    if until is not None:
        end = until.astimezone(dt.timezone.utc).date()
    if first is not None and end is not None and first >= end:
        return None, [(since, until)]
    raw: list[Window] = []
    if since is not None and first is not None and since < _midnight(first):
        raw.append((since, _midnight(first)))
    if until is not None and end is not None and _midnight(end) < until:
        raw.append((_midnight(end), until))
    return (first, end), raw


def counts_query(
    alias: str,
    windows: Mapping[str, Window],
    *,
    user_id: int | None = None,
    user_ids: Sequence[int] | None = None,
    by_user: bool = False,
    labelled: bool = True,
) -> tuple[str, list[Any]]:
    """One statement counting events per window label (and user) and ``event_type``: rows
    ``(label, [user_id,] event_type, count)`` (no label when ``labelled`` is false).

    Filtered by one ``user_id`` or a list ``user_ids`` (then the per-user rollup is read)."""
    connection = connections[alias]
    per_user = user_id is not None or user_ids is not None
    rollup = rollups.USER_DAILY if per_user else rollups.DAILY
    keys = "user_id, event_type" if by_user else "event_type"
    user_sql, user_params = "", []
    if user_id is not None:
        user_sql, user_params = "user_id = %s", [user_id]
    elif user_ids is not None:
        user_sql, user_params = in_clause(alias, "user_id", list(user_ids))
    parts: list[str] = []
    params: list[Any] = []
    for label, (since, until) in windows.items():
        days, raw = window_parts(since, until)
        if days is not None:
            conditions = [user_sql] if user_sql else []
            part_params: list[Any] = [label, *user_params]
            if days[0] is not None:
                conditions.append("day >= %s")
                part_params.append(connection.ops.adapt_datefield_value(days[0]))
            if days[1] is not None:
                conditions.append("day < %s")
                part_params.append(connection.ops.adapt_datefield_value(days[1]))
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            parts.append(f"SELECT %s AS label, {keys}, event_count AS n FROM {rollup}{where}")
            params += part_params
        for lower, upper in raw:
            conditions = [user_sql] if user_sql else []
            part_params = [label, *user_params]
            if lower is not None:
                conditions.append('"timestamp" >= %s')
                part_params.append(datetime_param(alias, lower))
            if upper is not None:
                conditions.append('"timestamp" < %s')
                part_params.append(datetime_param(alias, upper))
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            parts.append(
                f"SELECT %s AS label, {keys}, COUNT(*) AS n FROM {AnalyticsEvent._meta.db_table}{where} GROUP BY {keys}"
            )
            params += part_params
    if not parts:
        parts.append(f"SELECT %s AS label, {keys}, 0 AS n FROM {rollup} WHERE 1 = 0")
        params.append("")
    label = "label, " if labelled else ""
    # The label is a parameter: PostgreSQL needs its type to compare and group it.
    parts = [p.replace("SELECT %s AS label", "SELECT CAST(%s AS VARCHAR(20)) AS label", 1) for p in parts]
    sql = (
        f"SELECT {label}{keys}, SUM(n) FROM ({' UNION ALL '.join(parts)}) AS counted "
        f"GROUP BY {label}{keys} ORDER BY {label}{keys}"
    )
    return sql, params


def window_counts(
    alias: str, windows: Mapping[str, Window], **filters: Any
) -> dict[str, dict[Any, int]]:
    """``{label: {event_type (or (user_id, event_type) when by_user): count}}``."""
    sql, params = counts_query(alias, windows, **filters)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found: dict[str, dict[Any, int]] = {label: {} for label in windows}
    for row in rows:
        key = row[1] if len(row) == 3 else tuple(row[1:-1])
        if int(row[-1]):
            found[row[0]][key] = int(row[-1])
    return found


def event_list() -> QuerySet[AnalyticsEvent]:
    """All events, newest first; the API layer filters and pages them by timestamp."""
    return AnalyticsEvent.objects.all()


def event_get(*, event_id: int) -> AnalyticsEvent:
    try:
        return AnalyticsEvent.objects.get(pk=event_id)
    except AnalyticsEvent.DoesNotExist:
        raise NotFound("event", event_id) from None


def event_summary(
    *,
    user_id: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[dict[str, object]]:
    """Counts grouped by ``event_type`` (one query, on the rollups plus the raw rows of partial
    days at the window's edges): ``[{"event_type": ..., "count": N}, ...]``, the largest count
    first, ties by type."""
    alias = router.db_for_read(AnalyticsEvent)
    counts = window_counts(alias, {"w": (since, until)}, user_id=user_id)["w"]
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"event_type": event_type, "count": n} for event_type, n in ordered]
