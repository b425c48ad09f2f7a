"""Case-insensitive email lookups: an index on LOWER(email).

On PostgreSQL it is built ``CONCURRENTLY`` so that a large users table stays writable while the
index builds; that cannot run inside a transaction, hence ``atomic = False``. Other engines get a
plain index. The state side declares the same index, so ``makemigrations`` stays quiet.
"""

from django.db import migrations, models
from django.db.models.functions import Lower

from core import aliases
from core.migration_ops import VendorRunSQL

INDEX = "users_user_email_lower"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("users", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="user",
                    index=models.Index(Lower("email"), name=INDEX),
                ),
            ],
            database_operations=[
                VendorRunSQL(
                    sql={
                        "postgresql": f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON users_user (LOWER(email))",
                        "sqlite": f"CREATE INDEX IF NOT EXISTS {INDEX} ON users_user (LOWER(email))",
                        # MariaDB has no expression indexes; its default collation is case-insensitive,
                        # so a plain index on the column serves the same lookups.
                        "mysql": f"CREATE INDEX {INDEX} ON users_user (email)",
                    },
                    reverse_sql={
                        "postgresql": f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
                        "sqlite": f"DROP INDEX IF EXISTS {INDEX}",
                        "mysql": f"DROP INDEX {INDEX} ON users_user",
                    },
                    hints={"target_db": aliases.USERS},
                ),
            ],
        ),
    ]
