"""Scale-up seed for the benchmarks: 10,000 users, ~1,000,000 events, 50,000 posts, 5,000 customers.

Run through bench/seed.sh (it points the aliases at the bench databases). The rows are generated
by the database servers themselves (``generate_series``, MariaDB's sequence engine), so seeding
takes seconds, not minutes. Prints what it did. Idempotent: skips when the data is there unless
``--reset``. Also issues an API token for the benchmarks (written to $SWITCHYARD_VAR_DIR/token).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from core.tokens.services import token_create  # noqa: E402

from core import aliases  # noqa: E402
from core.legacy.schema import ensure_customers_table  # noqa: E402

EVENT_TYPES = ("page_view", "click", "login", "logout", "purchase", "search")


def timed(label: str):  # type: ignore[no-untyped-def]
    class _T:
        def __enter__(self):  # type: ignore[no-untyped-def]
            self.t = time.perf_counter()
            print(f"  {label} ...", end="", flush=True)

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            print(f" {time.perf_counter() - self.t:.1f}s", flush=True)

    return _T()


def run(alias: str, sql: str, params: list | None = None) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params or [])


def count(alias: str, table: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cursor.fetchone()[0])


def seed(users: int, posts: int, events: int, customers: int) -> None:
    with timed(f"users_db: {users} users"):
        run(aliases.USERS, "TRUNCATE users_user RESTART IDENTITY")
        run(
            aliases.USERS,
            "INSERT INTO users_user (username, email, first_name, last_name, created_at, updated_at) "
            "SELECT 'user' || g, 'user' || g || '@example.com', 'Ada', 'Number' || g, "
            "now() - random() * interval '365 days', now() FROM generate_series(1, %s) AS g",
            [users],
        )
    with timed(f"default: {posts} posts (authors skewed towards low ids)"):
        run(aliases.DEFAULT, "TRUNCATE blog_post RESTART IDENTITY")
        run(
            aliases.DEFAULT,
            "INSERT INTO blog_post (title, content, author_id, created_at, updated_at) "
            "SELECT 'Post ' || g, repeat('Lorem ipsum dolor sit amet. ', 10), "
            "1 + floor(power(random(), 2) * %s)::bigint, now() - random() * interval '365 days', now() "
            "FROM generate_series(1, %s) AS g",
            [users, posts],
        )
    with timed(f"analytics_db: {events} events over 90 days"):
        run(aliases.ANALYTICS, "TRUNCATE analytics_event RESTART IDENTITY")
        run(
            aliases.ANALYTICS,
            "INSERT INTO analytics_event (event_type, user_id, session_id, timestamp, data) "
            "SELECT (%s::text[])[1 + floor(random() * %s)::int], "
            "CASE WHEN random() < 0.05 THEN NULL ELSE 1 + floor(random() * %s)::bigint END, "
            "'s' || (g / 20), now() - random() * interval '90 days', '{}'::jsonb "
            "FROM generate_series(1, %s) AS g",
            [list(EVENT_TYPES), len(EVENT_TYPES), users, events],
        )
    with timed(f"legacy_db: {customers} customers"):
        run(aliases.LEGACY, "DELETE FROM customers")
        run(
            aliases.LEGACY,
            "INSERT INTO customers (customer_name, customer_email, created_date) "
            "SELECT CONCAT('Customer ', seq), CONCAT('customer', seq, '@example.com'), "
            "NOW() - INTERVAL seq MINUTE FROM seq_1_to_" + str(int(customers)),
        )
    with timed("VACUUM ANALYZE (visibility map for index-only scans)"):
        for alias, table in ((aliases.USERS, "users_user"), (aliases.DEFAULT, "blog_post"),
                             (aliases.ANALYTICS, "analytics_event")):
            run(alias, f"VACUUM ANALYZE {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--reset", action="store_true", help="seed again even when the data is there")
    args = parser.parse_args()

    for alias in (aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS):
        assert connections[alias].vendor == "postgresql", f"{alias} must be PostgreSQL (run bench/seed.sh)"
    call_command("migrate_all", verbosity=0)
    ensure_customers_table(aliases.LEGACY)
    have = count(aliases.ANALYTICS, "analytics_event")
    if args.reset or have < args.events * 0.9 or count(aliases.USERS, "users_user") < args.users:
        print("seeding:")
        seed(args.users, args.posts, args.events, args.customers)
    else:
        print(f"already seeded ({have} events); --reset to seed again")

    # An unbound backend token that may read and write posts, events and registrations (docs/security.md).
    key = token_create(username="bench", scopes=("read", "posts:write", "events:write", "registrations:write")).key
    token_file = Path(os.environ.get("SWITCHYARD_VAR_DIR", "var/bench")) / "token"
    token_file.write_text(key)
    token_file.chmod(0o600)
    for alias, table in ((aliases.USERS, "users_user"), (aliases.DEFAULT, "blog_post"),
                         (aliases.ANALYTICS, "analytics_event"), (aliases.LEGACY, "customers")):
        print(f"{alias}: {count(alias, table)} rows in {table}")
    print(f"API token in {token_file}")


if __name__ == "__main__":
    main()
