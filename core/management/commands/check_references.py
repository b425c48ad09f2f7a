"""Find (and with --fix remove) cross-database orphans; see core/services/references.py."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from core.services.references import DEFAULT_BATCH_SIZE, KINDS, KindReport, check_references


class Command(BaseCommand):
    help = (
        "Find rows naming a user that does not exist on users_db: posts and profiles (default), events "
        "(analytics_db, with USER_DELETION_ANALYTICS=delete) and cache entries user:<id>:* (cache_db). "
        "Keyset batches, one query per batch per database, a progress line per batch, one line per kind. "
        "--fix removes them. Exits 1 when orphans were found and not removed."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--fix", action="store_true", help="remove the orphans found")
        parser.add_argument(
            "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"rows per batch (default {DEFAULT_BATCH_SIZE})"
        )
        parser.add_argument(
            "--kind", action="append", choices=KINDS, default=None, help="only this kind (repeatable; default all)"
        )

    def handle(self, *args, fix=False, batch_size=DEFAULT_BATCH_SIZE, kind=None, **options):  # type: ignore[no-untyped-def]
        if not 1 <= batch_size <= 100_000:
            raise CommandError("--batch-size must be between 1 and 100000")
        started = time.perf_counter()

        def progress(report: KindReport) -> None:
            self.stdout.write(
                f"{report.kind}: batch {report.batches}: {report.scanned} scanned, {report.orphans} orphans "
                f"({time.perf_counter() - started:.2f}s)"
            )

        reports = check_references(fix=fix, batch_size=batch_size, kinds=kind or KINDS, progress=progress)
        left = 0
        for report in reports:
            if report.skipped:
                self.stdout.write(f"{report.kind}: skipped ({report.skipped})")
                continue
            self.stdout.write(
                f"{report.kind}: {report.orphans} orphans of {report.scanned} scanned"
                + (f", {report.removed} removed" if fix else "")
            )
            left += max(0, report.orphans - report.removed) if fix else report.orphans
        total = sum(r.orphans for r in reports)
        self.stdout.write(f"orphans: {total} found, {left} left ({time.perf_counter() - started:.2f}s)")
        if total and not fix:
            raise CommandError(f"{total} orphan(s) found; run with --fix to remove them", returncode=1)
