"""Rollups of events per day (kept by triggers) and, on PostgreSQL, monthly partitions.

The rollup tables are created, their triggers installed and their counts taken in this
migration's transaction, with the events table locked against writes (SHARE) on PostgreSQL.

An empty ``analytics_event`` on PostgreSQL (a new installation, the tests) becomes partitioned
here. A table that already holds events is left as it is: converting it copies every row, which a
DBA schedules (``manage.py analytics_partitions --convert``, docs/analytics.md); until then the
service works on the plain table (retention falls back to batched deletes).
"""

from django.db import migrations, models
from django.utils import timezone


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    from core.analytics import partitions, rollups

    connection = schema_editor.connection
    rollups.install(connection)
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM analytics_event)")
        empty = not cursor.fetchone()[0]
    if empty:
        partitions.convert(using=connection.alias, now=timezone.now())


def backwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    from core.analytics import partitions, rollups

    rollups.uninstall(schema_editor.connection)
    if schema_editor.connection.vendor == "postgresql":
        partitions.to_plain(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("analytics", "0002_user_ts_covering_index")]

    operations = [
        migrations.CreateModel(
            name="AnalyticsDailyCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("event_type", models.CharField(max_length=50)),
                ("event_count", models.BigIntegerField()),
            ],
            options={
                "db_table": "analytics_daily_count",
                "constraints": [models.UniqueConstraint(fields=("day", "event_type"), name="analytics_daily_day_type")],
            },
        ),
        migrations.CreateModel(
            name="AnalyticsHourlyCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hour", models.DateTimeField()),
                ("event_type", models.CharField(max_length=50)),
                ("event_count", models.BigIntegerField()),
            ],
            options={
                "db_table": "analytics_hourly_count",
                "constraints": [
                    models.UniqueConstraint(fields=("hour", "event_type"), name="analytics_hourly_hour_type")
                ],
            },
        ),
        migrations.CreateModel(
            name="AnalyticsUserDailyCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("user_id", models.BigIntegerField()),
                ("day", models.DateField()),
                ("event_type", models.CharField(max_length=50)),
                ("event_count", models.BigIntegerField()),
            ],
            options={
                "db_table": "analytics_user_daily_count",
                "constraints": [
                    models.UniqueConstraint(fields=("user_id", "day", "event_type"), name="analytics_user_daily_key")
                ],
            },
        ),
        migrations.RunPython(forwards, backwards),
    ]
