"""Time-based routing for the ``timeseries`` app label.

Rows of a ``timeseries`` model live in one database per month, named by
``TIMESERIES_ALIAS_PATTERN`` (``timeseries_2026_11``). Writes go to the current month's alias,
reads to the month of the ``instance`` hint's ``created_at`` (the current month without a hint).
When the alias for that month is not configured, or for any other app label, this router
answers ``None`` and the next router decides: with no monthly aliases it stays out of the way.

Any model's queries carrying the hint ``timeseries_month`` (a date in the month) go to that
month's alias when it is configured: archived analytics months are read and written so
(``AnalyticsEvent.objects.db_manager(hints={MONTH_HINT: month})``, core/analytics/archive.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db.models import Model
from django.utils import timezone

APP_LABEL = "timeseries"
#: Hint naming the month whose database a query goes to (any model).
MONTH_HINT = "timeseries_month"


def alias_for(moment: dt.datetime | dt.date) -> str:
    return settings.TIMESERIES_ALIAS_PATTERN.format(year=moment.year, month=moment.month)


def _configured(alias: str) -> str | None:
    return alias if alias in settings.DATABASES else None


def monthly_aliases() -> list[str]:
    """Every configured alias that the pattern could have produced."""
    prefix = settings.TIMESERIES_ALIAS_PATTERN.split("{", 1)[0]
    return [alias for alias in settings.DATABASES if prefix and alias.startswith(prefix)]


class TimeSeriesRouter:
    def _is_ours(self, model: type[Model]) -> bool:
        return model._meta.app_label == APP_LABEL

    def db_for_read(self, model: type[Model], **hints: Any) -> str | None:
        if hints.get(MONTH_HINT) is not None:
            return _configured(alias_for(hints[MONTH_HINT]))
        if not self._is_ours(model):
            return None
        instance = hints.get("instance")
        moment = getattr(instance, "created_at", None) if instance is not None else None
        return _configured(alias_for(moment or timezone.now()))

    def db_for_write(self, model: type[Model], **hints: Any) -> str | None:
        if hints.get(MONTH_HINT) is not None:
            return _configured(alias_for(hints[MONTH_HINT]))
        if not self._is_ours(model):
            return None
        return _configured(alias_for(timezone.now()))

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool | None:
        if APP_LABEL not in (obj1._meta.app_label, obj2._meta.app_label):
            return None
        return obj1._state.db == obj2._state.db

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        months = monthly_aliases()
        if not months:
            return None
        if db in months:
            return app_label == APP_LABEL
        if app_label == APP_LABEL:
            return False
        return None
