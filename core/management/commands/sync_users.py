"""Write a cache entry (user:<id>:summary) for every user updated in a window; see core/services/sync.py."""

from __future__ import annotations

import argparse
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.management.durations import parse_duration
from core.services.sync import users_sync


def parse_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ids takes user ids separated by commas, got {text!r}") from None
    if not ids or any(i < 1 for i in ids):
        raise argparse.ArgumentTypeError(f"--ids takes positive user ids separated by commas, got {text!r}")
    return ids


class Command(BaseCommand):
    help = (
        "Write the cache entry user:<id>:summary (cache_db) for every user updated within --since "
        "(default 1h), or for the users --ids 1,2,3, in batches: a fixed number of queries per batch "
        "(bulk upsert on cache_db, bulk insert of user_synced events on analytics_db). Idempotent: a "
        "second run rewrites the same entries. Prints a line per batch."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--since", type=parse_duration, default=None, help="window, e.g. 15m, 1h, 7d (default 1h)")
        group.add_argument("--ids", type=parse_ids, default=None, help="only these user ids, e.g. 1,2,3")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"users per batch (default SYNC_BATCH_SIZE, {settings.SYNC_BATCH_SIZE})",
        )

    def handle(self, *args, since=None, ids=None, batch_size=None, **options):  # type: ignore[no-untyped-def]
        if batch_size is not None and not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000")
        if ids is None and since is None:
            since = parse_duration("1h")
        started = time.perf_counter()

        def progress(number: int, size: int, total: int) -> None:
            self.stdout.write(
                f"batch {number}: {size} users synced ({total} so far, {time.perf_counter() - started:.2f}s)"
            )

        report = users_sync(since=since, ids=ids, batch_size=batch_size, progress=progress)
        if report.missing_ids:
            self.stdout.write(f"not found on users_db: {', '.join(map(str, report.missing_ids))}")
        self.stdout.write(
            f"synced {report.users} users in {report.batches} batches in {time.perf_counter() - started:.2f}s "
            f"(sync_id {report.sync_id})"
        )
