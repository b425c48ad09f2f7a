from django.db import models
from django.utils import timezone

from core.querysets import RoutedQuerySet


class AnalyticsEvent(models.Model):
    """One analytics event on analytics_db. ``user_id`` names a users_db user (or none)."""

    event_type = models.CharField(max_length=50)
    user_id = models.BigIntegerField(null=True, blank=True)
    session_id = models.CharField(max_length=100, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    data = models.JSONField(default=dict, blank=True)

    objects = RoutedQuerySet.as_manager()

    class Meta:
        db_table = "analytics_event"
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["event_type", "timestamp"], name="analytics_type_ts"),
            # A user's events by time, covering event_type: the dashboard's counts by type are
            # an index-only scan (no visit to the table's pages on PostgreSQL).
            models.Index(fields=["user_id", "timestamp"], include=["event_type"], name="analytics_user_ts_type"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} at {self.timestamp:%Y-%m-%dT%H:%M:%SZ}"


class AnalyticsDailyCount(models.Model):
    """Events per (UTC day, event_type): a rollup of ``analytics_event`` kept by database triggers
    in the same transaction as every insert, update and delete of events (docs/analytics.md)."""

    day = models.DateField()
    event_type = models.CharField(max_length=50)
    event_count = models.BigIntegerField()

    class Meta:
        db_table = "analytics_daily_count"
        constraints = [models.UniqueConstraint(fields=["day", "event_type"], name="analytics_daily_day_type")]

    def __str__(self) -> str:
        return f"{self.day} {self.event_type}: {self.event_count}"


class AnalyticsHourlyCount(models.Model):
    """Events per (UTC hour, event_type), kept like :class:`AnalyticsDailyCount`: a window that
    starts at any time of day reads whole hours from here, so that at most the events of one
    partial hour at each edge are counted from the raw table."""

    hour = models.DateTimeField()
    event_type = models.CharField(max_length=50)
    event_count = models.BigIntegerField()

    class Meta:
        db_table = "analytics_hourly_count"
        constraints = [models.UniqueConstraint(fields=["hour", "event_type"], name="analytics_hourly_hour_type")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%dT%H}Z {self.event_type}: {self.event_count}"


class AnalyticsUserDailyCount(models.Model):
    """Events per (user_id, UTC day, event_type) for events with a user; kept like
    :class:`AnalyticsDailyCount`. Keyed by user first: a user's figures are one index range."""

    user_id = models.BigIntegerField()
    day = models.DateField()
    event_type = models.CharField(max_length=50)
    event_count = models.BigIntegerField()

    class Meta:
        db_table = "analytics_user_daily_count"
        constraints = [
            models.UniqueConstraint(fields=["user_id", "day", "event_type"], name="analytics_user_daily_key")
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} {self.day} {self.event_type}: {self.event_count}"


class AnalyticsArchivedMonth(models.Model):
    """A month of events moved to its own database (core/analytics/archive.py): written in the
    transaction that drops the month's partition, so it exists exactly when the move is complete.
    ``min_id``/``max_id`` let an event's detail find its month by id."""

    month = models.DateField(unique=True)
    alias = models.CharField(max_length=100)
    rows = models.BigIntegerField()
    checksum = models.DecimalField(max_digits=40, decimal_places=0)
    min_id = models.BigIntegerField(null=True)
    max_id = models.BigIntegerField(null=True)
    archived_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "analytics_archived_month"
        ordering = ["-month"]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} on {self.alias} ({self.rows} events)"
