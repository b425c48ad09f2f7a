from django.core.management.base import BaseCommand, CommandError

from core import aliases
from core.legacy.schema import LegacySchemaMismatch, ensure_customers_table


class Command(BaseCommand):
    help = (
        "Create the legacy 'customers' table on legacy_db when it is absent (development and tests). "
        "Refuses when a different 'customers' table is already there."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--database", default=aliases.LEGACY, help="alias to create it on (default: legacy_db)")

    def handle(self, *args, database: str, **options):  # type: ignore[no-untyped-def]
        try:
            created = ensure_customers_table(database)
        except LegacySchemaMismatch as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{database}: customers table {'created' if created else 'already present'}")
