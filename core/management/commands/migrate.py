"""``migrate`` that refuses to touch the databases we do not own.

The routers already keep every operation off legacy_db; this also keeps Django from creating its
``django_migrations`` bookkeeping table there (the test runner and ``migrate --database legacy_db``
would otherwise do so). On such an alias the command prints why and does nothing.
"""

from django.core.management.commands.migrate import Command as DjangoMigrateCommand
from django.db import DEFAULT_DB_ALIAS

from routers.primary import NEVER_MIGRATED


class Command(DjangoMigrateCommand):
    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        database = options.get("database") or DEFAULT_DB_ALIAS
        if database in NEVER_MIGRATED:
            if options.get("verbosity", 1) >= 1:
                self.stdout.write(f"{database} is never migrated (its schema belongs to another system); skipped.")
            return
        return super().handle(*args, **options)
