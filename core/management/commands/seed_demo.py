"""Fill every database with realistic demo data, in bulk. Repeatable: demo rows are replaced."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from core.services.demo import DemoSizes, DemoUsernameTaken, seed_demo


class Command(BaseCommand):
    help = (
        "Fill every database with demo data in bulk (users, posts, profiles, analytics events, legacy "
        "customers, cache entries) and print an API token for the demo staff account. Running it again "
        "replaces the previous demo rows instead of adding more."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--users", type=int, default=1_000)
        parser.add_argument("--posts-per-user", type=int, default=10)
        parser.add_argument("--events", type=int, default=50_000)
        parser.add_argument("--days", type=int, default=60, help="events spread over this many days")
        parser.add_argument("--customers", type=int, default=2_000)
        parser.add_argument("--cache-entries", type=int, default=500)
        parser.add_argument("--batch-size", type=int, default=5_000)
        parser.add_argument("--seed", type=int, default=42, help="random seed (same seed, same data)")
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="where the service answers, for the printed Try: line (scripts/serve passes its BIND)",
        )

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        sizes = DemoSizes(
            users=opts["users"],
            posts_per_user=opts["posts_per_user"],
            events=opts["events"],
            days=opts["days"],
            customers=opts["customers"],
            cache_entries=opts["cache_entries"],
        )
        for name, value in vars(sizes).items():
            if value < 0:
                raise CommandError(f"--{name.replace('_', '-')} must not be negative")
        if opts["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        started = time.perf_counter()

        def progress(message: str) -> None:
            self.stdout.write(f"[{time.perf_counter() - started:6.1f}s] {message}")
            self.stdout.flush()

        try:
            token = seed_demo(sizes=sizes, seed=opts["seed"], batch_size=opts["batch_size"], progress=progress)
        except DemoUsernameTaken as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"done in {time.perf_counter() - started:.1f}s"))
        self.stdout.write(f"Demo staff API token (user demo_admin): {token}")
        base_url = opts["base_url"].rstrip("/")
        self.stdout.write(f'Try: curl -H "Authorization: Token {token}" {base_url}/api/v1/users/')
