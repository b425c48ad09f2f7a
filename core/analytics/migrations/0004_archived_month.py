import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("analytics", "0003_partitions_and_rollups")]

    operations = [
        migrations.CreateModel(
            name="AnalyticsArchivedMonth",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField(unique=True)),
                ("alias", models.CharField(max_length=100)),
                ("rows", models.BigIntegerField()),
                ("checksum", models.DecimalField(decimal_places=0, max_digits=40)),
                ("min_id", models.BigIntegerField(null=True)),
                ("max_id", models.BigIntegerField(null=True)),
                ("archived_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={"db_table": "analytics_archived_month", "ordering": ["-month"]},
        ),
    ]
