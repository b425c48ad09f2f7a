"""Migrate every primary alias in order (never replicas, never the legacy database)."""

import time
from io import StringIO

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from core import aliases
from core.analytics import partitions
from routers.primary import NEVER_MIGRATED


def migratable_aliases() -> list[str]:
    return [a for a in aliases.PRIMARIES if a in settings.DATABASES and a not in NEVER_MIGRATED]


class Command(BaseCommand):
    help = "Run migrations on every primary database alias, one line per alias. Replicas and legacy_db are skipped."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--database", action="append", help="only this alias (repeatable)")
        parser.add_argument("--app", help="only this app label")

    def handle(self, *args, database=None, app=None, **options):  # type: ignore[no-untyped-def]
        targets = migratable_aliases()
        if database:
            unknown = [d for d in database if d not in targets]
            if unknown:
                raise CommandError(
                    f"not a migratable primary alias: {', '.join(unknown)} (choose from {', '.join(targets)})"
                )
            targets = [d for d in targets if d in database]
        verbosity = int(options.get("verbosity", 1))
        if not database:
            for alias in aliases.PRIMARIES:
                if alias in NEVER_MIGRATED:
                    self.stdout.write(f"{alias}: skipped (never migrated; its schema belongs to another system)")
        for alias in targets:
            started = time.perf_counter()
            migrate_args = [app] if app else []
            call_command("migrate", *migrate_args, database=alias, interactive=False, verbosity=max(0, verbosity - 1))
            if alias == aliases.CACHE and not app:
                call_command("createcachetable", database=alias, verbosity=max(0, verbosity - 1))
            if alias == aliases.ANALYTICS and app in (None, "analytics"):
                # Partitions for the coming months (nothing on SQLite or an unconverted table).
                if partitions.is_partitioned(connections[alias]):
                    call_command(
                        "analytics_partitions",
                        ensure_ahead=3,
                        verbosity=max(0, verbosity - 1),
                        stdout=self.stdout if verbosity > 1 else StringIO(),
                    )
            vendor = settings.DATABASES[alias]["ENGINE"].rsplit(".", 1)[-1]
            self.stdout.write(f"{alias} ({vendor}): migrated in {time.perf_counter() - started:.2f}s")
