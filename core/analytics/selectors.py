"""Reads of analytics events (analytics_db).

Counts come from the rollups (core/analytics/rollups.py): whole UTC days from the daily ones,
whole hours of a partial day from the hourly one, and the raw events only for the minutes left
at either edge of a window (less than an hour of events each; less than a day for one user's or
some users' counts, which have a daily rollup only): their cost does not grow with the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Count, QuerySet

from core.analytics import rollups
from core.analytics.models import AnalyticsEvent
from core.errors import NotFound
from core.services.sql import datetime_param, in_clause

Window = tuple[dt.datetime | None, dt.datetime | None]


DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _floor(moment: dt.datetime, unit: dt.timedelta) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    return moment - (moment - _EPOCH) % unit


def _ceil(moment: dt.datetime, unit: dt.timedelta) -> dt.datetime:
    floor = _floor(moment, unit)
    return floor if floor == moment else floor + unit


def window_parts(
    since: dt.datetime | None, until: dt.datetime | None, units: Sequence[dt.timedelta] = (DAY, HOUR)
) -> tuple[dict[dt.timedelta, list[Window]], list[Window]]:
    """Split ``[since, until)`` into whole units, largest first (``{unit: [(start, end)]}``, a
    bound ``None`` when the window is unbounded that side), and the raw ranges left at its edges
    (each shorter than the smallest unit)."""
    whole: dict[dt.timedelta, list[Window]] = {unit: [] for unit in units}
    raw: list[Window] = []

    def split(lower: dt.datetime | None, upper: dt.datetime | None, level: int) -> None:
        if level == len(units):
            raw.append((lower, upper))
            return
        unit = units[level]
        first = _ceil(lower, unit) if lower is not None else None
        end = _floor(upper, unit) if upper is not None else None
        if first is not None and end is not None and first >= end:
            split(lower, upper, level + 1)
            return
        whole[unit].append((first, end))
        if lower is not None and first is not None and lower < first:
            split(lower, first, level + 1)
        if upper is not None and end is not None and end < upper:
            split(end, upper, level + 1)

    split(since, until, 0)
    return whole, raw


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

    Whole days come from the daily rollup, whole hours of a partial day from the hourly one, the
    minutes left at each edge from the events table. Filtered by one ``user_id`` or a list
    ``user_ids``, the per-user daily rollup is read, with the raw events of a partial day."""
    connection = connections[alias]
    per_user = user_id is not None or user_ids is not None
    keys = "user_id, event_type" if by_user else "event_type"
    user_sql, user_params = "", []
    if user_id is not None:
        user_sql, user_params = "user_id = %s", [user_id]
    elif user_ids is not None:
        user_sql, user_params = in_clause(alias, "user_id", list(user_ids))
    # (unit, table, column, value adapter)
    sources = [
        (
            DAY,
            rollups.USER_DAILY if per_user else rollups.DAILY,
            "day",
            lambda moment: connection.ops.adapt_datefield_value(moment.date()),
        )
    ]
    if not per_user:
        sources.append((HOUR, rollups.HOURLY, "hour", lambda moment: datetime_param(alias, moment)))
    parts: list[str] = []
    params: list[Any] = []

    def part(table: str, column: str, count: str, lower: Any, upper: Any, label: str, group: bool) -> None:
        conditions = [user_sql] if user_sql else []
        part_params: list[Any] = [label, *user_params]
        if lower is not None:
            conditions.append(f"{column} >= %s")
            part_params.append(lower)
        if upper is not None:
            conditions.append(f"{column} < %s")
            part_params.append(upper)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        grouping = f" GROUP BY {keys}" if group else ""
        # The label is a parameter: PostgreSQL needs its type to group by it.
        parts.append(f"SELECT CAST(%s AS VARCHAR(20)) AS label, {keys}, {count} AS n FROM {table}{where}{grouping}")
        params.extend(part_params)

    for label, (since, until) in windows.items():
        whole, raw = window_parts(since, until, [unit for unit, *_ in sources])
        for unit, table, column, adapt in sources:
            for lower, upper in whole[unit]:
                part(
                    table,
                    column,
                    "event_count",
                    None if lower is None else adapt(lower),
                    None if upper is None else adapt(upper),
                    label,
                    False,
                )
        for lower, upper in raw:
            low = None if lower is None else datetime_param(alias, lower)
            high = None if upper is None else datetime_param(alias, upper)
            if per_user or low is None or high is None:
                part(AnalyticsEvent._meta.db_table, '"timestamp"', "COUNT(*)", low, high, label, True)
                continue
            # All events in an edge, by type: one range of the (event_type, timestamp) index per
            # type known to the daily rollup (which has every type there is): index-only scans,
            # where a range of the timestamp index would visit a table page per event.
            parts.append(
                f"SELECT CAST(%s AS VARCHAR(20)) AS label, k.event_type, (SELECT COUNT(*) FROM "
                f'{AnalyticsEvent._meta.db_table} e WHERE e.event_type = k.event_type AND e."timestamp" >= %s '
                f'AND e."timestamp" < %s) AS n FROM (SELECT DISTINCT event_type FROM {rollups.DAILY}) k'
            )
            params.extend([label, low, high])
    if not parts:
        parts.append(f"SELECT CAST(%s AS VARCHAR(20)) AS label, {keys}, 0 AS n FROM {rollups.DAILY} WHERE 1 = 0")
        params.append("")
    label = "label, " if labelled else ""
    sql = (
        f"SELECT {label}{keys}, SUM(n) FROM ({' UNION ALL '.join(parts)}) AS counted "
        f"GROUP BY {label}{keys} ORDER BY {label}{keys}"
    )
    return sql, params


def window_counts(alias: str, windows: Mapping[str, Window], **filters: Any) -> dict[str, dict[Any, int]]:
    """``{label: {event_type (or (user_id, event_type) when by_user): count}}``.

    The rollups keep archived months; the raw minutes at a window's edge that fall in an archived
    month are counted on that month's database (one more query per such edge)."""
    sql, params = counts_query(alias, windows, **filters)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    found: dict[str, dict[Any, int]] = {label: {} for label in windows}
    for row in rows:
        key = row[1] if len(row) == 3 else tuple(row[1:-1])
        if int(row[-1]):
            found[row[0]][key] = int(row[-1])
    archived = archived_months()
    if archived:
        _add_archived_edges(found, windows, archived, **filters)
    return found


def _add_archived_edges(
    found: dict[str, dict[Any, int]],
    windows: Mapping[str, Window],
    archived: list[Any],
    *,
    user_id: int | None = None,
    user_ids: Sequence[int] | None = None,
    by_user: bool = False,
    labelled: bool = True,
) -> None:
    from core.analytics.partitions import add_months, bound
    from routers.timeseries import MONTH_HINT

    units = [DAY] if user_id is not None or user_ids is not None else [DAY, HOUR]
    keys = ["user_id", "event_type"] if by_user else ["event_type"]
    for label, (since, until) in windows.items():
        for lower, upper in window_parts(since, until, units)[1]:
            for month in archived:
                start, end = bound(month.month), bound(add_months(month.month, 1))
                low = start if lower is None else max(lower, start)
                high = end if upper is None else min(upper, end)
                if low >= high:
                    continue
                events = AnalyticsEvent.objects.db_manager(hints={MONTH_HINT: month.month}).filter(
                    timestamp__gte=low, timestamp__lt=high
                )
                if user_id is not None:
                    events = events.filter(user_id=user_id)
                if user_ids is not None:
                    events = events.filter(user_id__in=list(user_ids))
                for row in events.order_by().values(*keys).annotate(n=Count("id")):
                    key = row["event_type"] if not by_user else (row["user_id"], row["event_type"])
                    found[label][key] = found[label].get(key, 0) + row["n"]


def events_since(*, since: dt.datetime, user_id: int | None = None) -> QuerySet[AnalyticsEvent]:
    """Events at or after ``since`` (of one user), on the live table (a queryset, not run)."""
    events = AnalyticsEvent.objects.filter(timestamp__gte=since)
    return events if user_id is None else events.filter(user_id=user_id)


def event_type_counts_of_users(*, user_ids: Sequence[int], since: dt.datetime) -> QuerySet[AnalyticsEvent]:
    """``.values()`` rows ``{user_id, event_type, n}``: the users' events at or after ``since``
    counted by user and type, in one grouped statement (a queryset, not run)."""
    events = AnalyticsEvent.objects.filter(user_id__in=list(user_ids), timestamp__gte=since)
    return events.order_by().values("user_id", "event_type").annotate(n=Count("id"))


def event_list() -> QuerySet[AnalyticsEvent]:
    """All events, newest first; the API layer filters and pages them by timestamp."""
    return AnalyticsEvent.objects.all()


#: The columns of an event the API answers with.
EVENT_FIELDS = ("id", "event_type", "user_id", "session_id", "timestamp", "data")


def event_rows(queryset: QuerySet[AnalyticsEvent]) -> QuerySet[AnalyticsEvent]:
    """The API's columns of ``queryset`` as plain dicts (``.values()``, JSON decoded as the ORM
    does): a page of 50 without 50 model instances."""
    return queryset.values(*EVENT_FIELDS)


def position(row: Any) -> tuple[Any, int]:
    """``(timestamp, id)`` of an event, a model instance or a ``.values()`` row: its place in the
    list's order."""
    return (row["timestamp"], row["id"]) if isinstance(row, dict) else (row.timestamp, row.pk)


def archived_months() -> list[Any]:
    """The months moved to their own databases, newest first (no query when no monthly database
    is configured)."""
    from core.analytics.models import AnalyticsArchivedMonth
    from routers.timeseries import monthly_aliases

    if not monthly_aliases():
        return []
    return list(AnalyticsArchivedMonth.objects.order_by("-month"))


def archived_event_lists() -> list[tuple[dt.date, QuerySet[AnalyticsEvent]]]:
    """``(month, its events)`` for every archived month, read through the time-based router."""
    from routers.timeseries import MONTH_HINT

    return [
        (archived.month, AnalyticsEvent.objects.db_manager(hints={MONTH_HINT: archived.month}).all())
        for archived in archived_months()
    ]


class MonthChain:
    """The live events (analytics_db) and the archived months' events read as one list by the
    cursor pagination, which calls ``order_by``, ``filter`` and takes a slice ``[:n]``.

    A slice reads the first ``n`` rows of the live table and of the archived months in the order
    asked (they hold disjoint months: newest first for a descending order, the next month read
    only while fewer than ``n`` rows were found), then merges them by ``(timestamp, id)``."""

    def __init__(
        self,
        live: QuerySet[AnalyticsEvent],
        archived: Sequence[tuple[dt.date, QuerySet[AnalyticsEvent]]],
        ordering: Sequence[str] = (),
    ) -> None:
        self.live = live
        self.archived = list(archived)
        self.ordering = tuple(ordering)

    @property
    def db(self) -> str:
        """The alias of the live events (where a list's statement timeout applies)."""
        return self.live.db

    def order_by(self, *fields: str) -> MonthChain:
        return MonthChain(self.live.order_by(*fields), [(m, q.order_by(*fields)) for m, q in self.archived], fields)

    def filter(self, *args: Any, **kwargs: Any) -> MonthChain:
        return MonthChain(
            self.live.filter(*args, **kwargs), [(m, q.filter(*args, **kwargs)) for m, q in self.archived], self.ordering
        )

    def __getitem__(self, item: slice) -> list[AnalyticsEvent]:
        if not isinstance(item, slice) or item.start not in (None, 0) or item.stop is None or item.step:
            raise TypeError("MonthChain supports [:n] only")
        stop = item.stop
        descending = bool(self.ordering) and self.ordering[0].startswith("-")
        found = list(self.live[:stop])
        older: list[AnalyticsEvent] = []
        for _month, events in sorted(self.archived, key=lambda pair: pair[0], reverse=descending):
            if len(older) >= stop:
                break
            older.extend(events[: stop - len(older)])
        merged = sorted(found + older, key=position, reverse=descending)
        return merged[:stop]


def event_get(*, event_id: int) -> AnalyticsEvent:
    """The event on analytics_db, else in the archived month whose id range holds it."""
    event = AnalyticsEvent.objects.by_pk(event_id)
    if event is not None:
        return event
    from routers.timeseries import MONTH_HINT

    for archived in archived_months():
        if archived.min_id is not None and archived.min_id <= event_id <= archived.max_id:
            try:
                return AnalyticsEvent.objects.db_manager(hints={MONTH_HINT: archived.month}).get(pk=event_id)
            except AnalyticsEvent.DoesNotExist:
                continue
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
