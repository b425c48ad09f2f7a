"""Reads of analytics events (analytics_db)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, QuerySet

from core.analytics.models import AnalyticsEvent
from core.errors import NotFound


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
    """Counts grouped by ``event_type`` (one query): ``[{"event_type": ..., "count": N}, ...]``,
    the largest count first, ties by type."""
    qs = AnalyticsEvent.objects.all()
    if user_id is not None:
        qs = qs.filter(user_id=user_id)
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    if until is not None:
        qs = qs.filter(timestamp__lt=until)
    rows = qs.order_by().values("event_type").annotate(count=Count("id")).order_by("-count", "event_type")
    return [{"event_type": r["event_type"], "count": r["count"]} for r in rows]
