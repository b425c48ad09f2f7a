from django.db import models
from django.utils import timezone


class AnalyticsEvent(models.Model):
    """One analytics event on analytics_db. ``user_id`` names a users_db user (or none)."""

    event_type = models.CharField(max_length=50)
    user_id = models.BigIntegerField(null=True, blank=True)
    session_id = models.CharField(max_length=100, blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now, db_index=True)
    data = models.JSONField(default=dict, blank=True)

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
