"""Usernames unique by their look-alike key: ``users_user.username_skeleton`` (``core.users.skeleton``)
with a unique index, in place of 0003's unique index on LOWER(username), which it covers (case is
folded into the key).

1. The column is added empty (``''``, NOT NULL): an instant ``ALTER TABLE`` on PostgreSQL 11+.
2. Every row gets its key, in id order, 2,000 rows per statement. Rows whose key an older row
   (lower id) already has are look-alikes created before the rule: they are kept, working, with the
   placeholder ``kept:<id>`` (unique), and each is listed on the migration's output, so that an
   operator can rename or delete them (docs/security.md, "Look-alike usernames"). A rename gives
   such a user a real key, which must then be free.
3. The unique index is built (``CONCURRENTLY`` on PostgreSQL, hence ``atomic = False``), then 0003's
   LOWER(username) index is dropped.

Reversed, the LOWER(username) index comes back first; that fails when two kept rows differ only
by case.
"""

from django.db import migrations, models

from core import aliases
from core.migration_ops import VendorRunSQL
from core.users.skeleton import username_skeleton

NAME = "users_user_username_skeleton_uniq"
LOWER_NAME = "users_user_username_lower_uniq"
BATCH = 2_000


def fill_skeletons(apps, schema_editor):
    db = schema_editor.connection.alias
    from django.db import router

    if not router.allow_migrate(db, "users", target_db=aliases.USERS):
        return
    User = apps.get_model("users", "User")
    seen: dict[str, int] = {}
    batch = []
    for user in User.objects.using(db).only("id", "username").order_by("id").iterator(chunk_size=BATCH):
        key = username_skeleton(user.username)
        if key in seen:
            print(
                f"\n  users_db: user {user.pk} ({user.username!r}) looks like user {seen[key]}: kept as kept:{user.pk}"
            )
            key = f"kept:{user.pk}"
        else:
            seen[key] = user.pk
        user.username_skeleton = key
        batch.append(user)
        if len(batch) >= BATCH:
            User.objects.using(db).bulk_update(batch, ["username_skeleton"])
            batch = []
    if batch:
        User.objects.using(db).bulk_update(batch, ["username_skeleton"])


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("users", "0004_user_deleting_saga_id")]

    operations = [
        migrations.AddField(
            model_name="user",
            name="username_skeleton",
            field=models.CharField(blank=True, default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(fill_skeletons, migrations.RunPython.noop, hints={"target_db": aliases.USERS}),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="user",
                    constraint=models.UniqueConstraint(fields=["username_skeleton"], name=NAME),
                ),
                migrations.RemoveConstraint(model_name="user", name=LOWER_NAME),
            ],
            database_operations=[
                VendorRunSQL(
                    sql={
                        "postgresql": f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {NAME} ON users_user (username_skeleton)",
                        "sqlite": f"CREATE UNIQUE INDEX IF NOT EXISTS {NAME} ON users_user (username_skeleton)",
                    },
                    reverse_sql={
                        "postgresql": f"DROP INDEX CONCURRENTLY IF EXISTS {NAME}",
                        "sqlite": f"DROP INDEX IF EXISTS {NAME}",
                    },
                    hints={"target_db": aliases.USERS},
                ),
                VendorRunSQL(
                    sql={
                        "postgresql": f"DROP INDEX CONCURRENTLY IF EXISTS {LOWER_NAME}",
                        "sqlite": f"DROP INDEX IF EXISTS {LOWER_NAME}",
                    },
                    reverse_sql={
                        "postgresql": f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {LOWER_NAME} ON users_user (LOWER(username))",
                        "sqlite": f"CREATE UNIQUE INDEX IF NOT EXISTS {LOWER_NAME} ON users_user (LOWER(username))",
                    },
                    hints={"target_db": aliases.USERS},
                ),
            ],
        ),
    ]
