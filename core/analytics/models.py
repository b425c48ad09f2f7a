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
