"""The (user_id, timestamp) index covers event_type too, so that a user's counts by type over a
period (the dashboard) are an index-only scan on PostgreSQL.

Built before the old index is dropped, both ``CONCURRENTLY`` on PostgreSQL (``atomic = False``):
the events table stays writable and a user's events stay indexed throughout. Elsewhere a plain
index (SQLite has no covering columns: the same two key columns).
"""

from django.db import migrations, models

from core.migration_ops import AddIndexOnline, RemoveIndexOnline


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("analytics", "0001_initial")]

    operations = [
        AddIndexOnline(
            model_name="analyticsevent",
            index=models.Index(fields=["user_id", "timestamp"], include=["event_type"], name="analytics_user_ts_type"),
        ),
        RemoveIndexOnline(model_name="analyticsevent", name="analytics_user_ts"),
    ]
