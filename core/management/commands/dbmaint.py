"""Database maintenance: batched clean-ups, VACUUM, health check (see core/services/maintenance.py)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import aliases
from core.services import maintenance


def _month(text: str | None) -> dt.date:
    if not text:
        raise CommandError("--archive-analytics needs --before YYYY-MM")
    try:
        year, month = (int(part) for part in text.split("-"))
        return dt.date(year, month, 1)
    except ValueError:
        raise CommandError(f"--before must be YYYY-MM, not {text[:20]!r}") from None


class Command(BaseCommand):
    help = (
        "Database maintenance, one line per alias with counts and time. "
        "--cleanup-analytics [--days 90]: drop whole months of analytics events older than the cut-off "
        "(partitioned table) and delete the straddling month's old rows in batches (no long lock). "
        "--archive-analytics --before YYYY-MM: move whole months before that month to their monthly "
        "databases (TIMESERIES_DATABASE_URL), verified by count and checksum before the partition is dropped. "
        "--cleanup-cache: delete expired cache entries. --cleanup-idempotency: delete expired Idempotency-Key records. "
        "--vacuum: VACUUM ANALYZE on PostgreSQL, VACUUM + PRAGMA optimize on SQLite, outside any transaction; "
        "never legacy_db. --health-check: SELECT 1 on every alias; exit status 1 when a required alias "
        "(DBMAINT_REQUIRED_ALIASES) is down. Options combine; at least one is needed."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--cleanup-analytics", action="store_true", help="delete analytics events older than --days"
        )
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="age in days for --cleanup-analytics (default ANALYTICS_RETENTION_DAYS, 90)",
        )
        parser.add_argument(
            "--archive-analytics", action="store_true", help="move whole months before --before to their own databases"
        )
        parser.add_argument("--before", default=None, metavar="YYYY-MM", help="first month kept on analytics_db")
        parser.add_argument("--cleanup-cache", action="store_true", help="delete expired cache entries on cache_db")
        parser.add_argument("--cleanup-idempotency", action="store_true", help="delete expired Idempotency-Key records")
        parser.add_argument("--vacuum", action="store_true", help="VACUUM every primary alias except legacy_db")
        parser.add_argument(
            "--health-check",
            action="store_true",
            help="SELECT 1 on every alias; non-zero exit when a required one is down",
        )
        parser.add_argument("--batch-size", type=int, default=None, help="rows per DELETE (default DBMAINT_BATCH_SIZE)")

    def _line(self, report: maintenance.AliasReport, what: str) -> None:
        status = "ok" if report.ok else "DOWN"
        extra = f" ({report.detail})" if report.detail else ""
        self.stdout.write(
            f"{report.alias} ({report.vendor}): {status}, {what}{extra} in {report.seconds * 1000:.1f} ms"
        )

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        chosen = [
            k
            for k in (
                "cleanup_analytics",
                "archive_analytics",
                "cleanup_cache",
                "cleanup_idempotency",
                "vacuum",
                "health_check",
            )
            if options[k]
        ]
        if not chosen:
            raise CommandError(
                "choose at least one of --cleanup-analytics, --archive-analytics, --cleanup-cache, "
                "--cleanup-idempotency, --vacuum, --health-check"
            )
        before = None
        if options["archive_analytics"]:
            before = _month(options["before"])
        batch_size = options["batch_size"] or settings.DBMAINT_BATCH_SIZE
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        days = options["days"] if options["days"] is not None else settings.ANALYTICS_RETENTION_DAYS
        if days < 0:
            raise CommandError("--days must not be negative")
        verbose = int(options.get("verbosity", 1)) > 1

        def progress(alias: str):
            def report(batch: int, total: int) -> None:
                if verbose:
                    self.stdout.write(f"  {alias}: batch {batch}, {total} rows deleted so far")

            return report

        if options["cleanup_analytics"]:
            r = maintenance.analytics_cleanup(days=days, batch_size=batch_size, progress=progress(aliases.ANALYTICS))
            self._line(r, f"deleted {r.count} events older than {days} days in {r.batches} batches")
        if options["archive_analytics"]:
            from core.analytics import archive

            try:
                months = archive.archive_before(before=before, progress=lambda text: self.stdout.write(f"  {text}"))
            except archive.ArchiveError as exc:
                raise CommandError(str(exc)) from None
            for m in months:
                made = " (database created)" if m.created_database else ""
                self.stdout.write(f"{m.alias}: archived {m.month:%Y-%m}, {m.rows} events{made} in {m.seconds:.2f}s")
            if not months:
                self.stdout.write(f"{aliases.ANALYTICS}: no month before {before:%Y-%m} left to archive")
        if options["cleanup_cache"]:
            r = maintenance.cache_cleanup(batch_size=batch_size, progress=progress(aliases.CACHE))
            self._line(r, f"deleted {r.count} expired cache entries in {r.batches} batches")
        if options["cleanup_idempotency"]:
            r = maintenance.idempotency_cleanup(batch_size=batch_size, progress=progress(aliases.DEFAULT))
            self._line(r, f"deleted {r.count} expired idempotency keys in {r.batches} batches")
        if options["vacuum"]:
            for alias in maintenance.vacuum_aliases():
                r = maintenance.vacuum(alias)
                self._line(r, "vacuumed")
            self.stdout.write(f"{aliases.LEGACY}: skipped (never vacuumed: not our database)")
        if options["health_check"]:
            required = maintenance.required_aliases()
            down = []
            for alias in settings.DATABASES:
                r = maintenance.health_check(alias)
                role = "required" if alias in required else "optional"
                self._line(r, f"SELECT 1 ({role})")
                if not r.ok and alias in required:
                    down.append(alias)
            if down:
                raise CommandError(f"required database(s) down: {', '.join(down)}", returncode=1)
