"""``users_user.deleting_saga_id``: the deletion saga that owns a user being deleted (the fence of
docs/sagas.md). Nullable, no default: an instant ``ALTER TABLE ... ADD COLUMN`` on PostgreSQL."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("users", "0003_username_lower_unique")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="deleting_saga_id",
            field=models.BigIntegerField(blank=True, default=None, null=True),
        ),
    ]
