"""The time-based router: monthly aliases for the ``timeseries`` app label."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.db import models, router
from django.test import override_settings
from django.utils import timezone

from core import aliases
from core.blog.models import Post
from routers.timeseries import TimeSeriesRouter, alias_for


class Reading(models.Model):
    """A stand-in model of the ``timeseries`` app label (no table: only routing is exercised)."""

    created_at = models.DateTimeField()

    class Meta:
        app_label = "timeseries"
        managed = False


def _with_months(*months: tuple[int, int]) -> dict:
    extra = {
        f"timeseries_{y:04d}_{m:02d}": {**settings.DATABASES[aliases.DEFAULT], "NAME": f"ts_{y}_{m}"} for y, m in months
    }
    return {**settings.DATABASES, **extra}


def test_without_monthly_aliases_it_stays_out_of_the_way():
    ts = TimeSeriesRouter()
    assert ts.db_for_read(Reading) is None
    assert ts.db_for_write(Reading) is None
    assert ts.allow_migrate(aliases.DEFAULT, "timeseries") is None
    # ... and the primary router takes over: unknown label -> default
    assert router.db_for_write(Reading) == aliases.DEFAULT


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_writes_go_to_the_current_month_and_reads_follow_created_at():
    now = timezone.now()
    last_month = now.replace(day=1) - dt.timedelta(days=1)
    current_alias = alias_for(now)
    previous_alias = alias_for(last_month)
    with override_settings(DATABASES=_with_months((now.year, now.month), (last_month.year, last_month.month))):
        ts = TimeSeriesRouter()
        assert ts.db_for_write(Reading) == current_alias
        old = Reading(created_at=last_month)
        assert ts.db_for_read(Reading, instance=old) == previous_alias
        assert ts.db_for_read(Reading) == current_alias
        # a month with no alias falls through to the next router
        ancient = Reading(created_at=dt.datetime(2001, 1, 5, tzinfo=dt.UTC))
        assert ts.db_for_read(Reading, instance=ancient) is None
        # migrations: timeseries tables only on monthly aliases, nothing else there
        assert ts.allow_migrate(current_alias, "timeseries") is True
        assert ts.allow_migrate(current_alias, "blog") is False
        assert ts.allow_migrate(aliases.DEFAULT, "timeseries") is False
        assert ts.allow_migrate(aliases.DEFAULT, "blog") is None
        # other labels are not its business
        assert ts.db_for_write(Post) is None


def test_alias_pattern_comes_from_settings():
    with override_settings(TIMESERIES_ALIAS_PATTERN="metrics_{year}{month:02d}"):
        assert alias_for(dt.date(2026, 11, 3)) == "metrics_202611"


@pytest.mark.parametrize("month", [1, 12])
def test_alias_names_are_zero_padded(month):
    assert alias_for(dt.date(2026, month, 1)) == f"timeseries_2026_{month:02d}"
