"""Usernames unique whatever their case: a unique index on LOWER(username).

Built ``CONCURRENTLY`` on PostgreSQL (hence ``atomic = False``), as 0002 does for email. The state
side declares the model's ``UniqueConstraint(Lower("username"))``. Existing rows that differ only by
case must be renamed before this migration can run (it fails rather than pick one).
"""

from django.db import migrations, models
from django.db.models.functions import Lower

from core import aliases
from core.migration_ops import VendorRunSQL

NAME = "users_user_username_lower_uniq"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("users", "0002_email_lower_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="user",
                    constraint=models.UniqueConstraint(Lower("username"), name=NAME),
                ),
            ],
            database_operations=[
                VendorRunSQL(
                    sql={
                        "postgresql": f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON users_user (LOWER(username))",
                        "sqlite": f"CREATE UNIQUE INDEX IF NOT EXISTS {NAME} ON users_user (LOWER(username))",
                        # MariaDB has no expression indexes; its default collation compares
                        # case-insensitively, so the column's own unique index already does this.
                    },
                    reverse_sql={
                        "postgresql": f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}",
                        "sqlite": f"DROP INDEX IF EXISTS {NAME}",
                    },
                    hints={"target_db": aliases.USERS},
                ),
            ],
        ),
    ]
