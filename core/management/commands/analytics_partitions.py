"""Monthly partitions of analytics events on PostgreSQL (core/analytics/partitions.py, docs/analytics.md)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone

from core import aliases
from core.analytics import partitions


class Command(BaseCommand):
    help = (
        "Monthly partitions of analytics_event on analytics_db (PostgreSQL; SQLite keeps one plain table). "
        "--ensure-ahead N: create the partitions of the current month and the N after it (and the default "
        "partition); reports events that sit in the default partition. --convert [--batch-size N]: convert "
        "an unpartitioned table, copying in batches while it stays writable, then swapping in one short "
        "locked step. --list: the partitions and the default partition's rows by month."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--ensure-ahead", type=int, default=None, metavar="N")
        parser.add_argument("--convert", action="store_true")
        parser.add_argument("--batch-size", type=int, default=50_000)
        parser.add_argument("--list", action="store_true")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        ahead, convert, listing = options["ensure_ahead"], options["convert"], options["list"]
        if ahead is None and not convert and not listing:
            raise CommandError("choose at least one of --ensure-ahead N, --convert, --list")
        if ahead is not None and not 0 <= ahead <= 120:
            raise CommandError("--ensure-ahead must be from 0 to 120")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        alias = aliases.ANALYTICS
        connection = connections[alias]
        if connection.vendor != "postgresql":
            self.stdout.write(f"{alias} ({connection.vendor}): one plain table, no partitions")
            return
        now = timezone.now()
        if convert:
            report = partitions.convert(
                using=alias,
                batch_size=options["batch_size"],
                now=now,
                ahead=ahead if ahead is not None else 3,
                progress=lambda text: self.stdout.write(f"  {text}"),
            )
            if report.detail:
                self.stdout.write(f"{alias}: {report.detail}")
            else:
                self.stdout.write(
                    f"{alias}: converted {report.rows} rows into {report.partitions} monthly partitions in "
                    f"{report.seconds:.1f}s (copy {report.copy_seconds:.1f}s, indexes {report.index_seconds:.1f}s, "
                    f"locked swap {report.swap_seconds:.2f}s with {report.swap_rows} rows caught up)"
                )
        if not partitions.is_partitioned(connection):
            raise CommandError(f"{alias}: analytics_event is not partitioned; run --convert first")
        if ahead is not None:
            report = partitions.ensure_ahead(using=alias, ahead=ahead, now=now)
            created = ", ".join(report.created) or "none"
            self.stdout.write(
                f"{alias}: partitions ensured {ahead} months ahead in {report.seconds * 1000:.1f} ms; created: {created}"
                + (f"; moved {report.moved} rows out of the default partition" if report.moved else "")
            )
            self._default(report.default_rows)
        if listing:
            for month in partitions.months(connection):
                self.stdout.write(f"  {partitions.partition_name(month)}")
            self._default(partitions.default_rows_by_month(connection))

    def _default(self, rows: dict) -> None:  # type: ignore[type-arg]
        if rows:
            detail = ", ".join(f"{month:%Y-%m}: {n}" for month, n in rows.items())
            self.stderr.write(
                f"WARNING: {sum(rows.values())} events outside every monthly partition "
                f"(in {partitions.DEFAULT_PARTITION}): {detail}"
            )
        else:
            self.stdout.write(f"  {partitions.DEFAULT_PARTITION}: empty")
