"""Demo data for every database, written in bulk. Used by ``manage.py seed_demo`` and benchmarks.

It writes the models of every app, so it lives in ``core/services/`` with the other use cases that
span databases: the only package that imports the models of more than one app
(``tests/core/test_layout_rules.py``).

Demo rows are recognisable (usernames ``demo_*``, sessions ``demo-*``, customer emails at
``demo.switchyard.test``, cache keys ``demo:*``), so a second run replaces them instead of adding
more. PostgreSQL events go in with ``COPY``; other engines use multi-row inserts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.db import connections, router, transaction
from django.db.models import Model
from django.utils import timezone

from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.legacy.models import LegacyCustomer
from core.users.models import User
from core.users.skeleton import username_skeleton
from routers.state import allow_legacy_writes

EVENT_TYPES = ("page_view", "click", "login", "logout", "search", "purchase", "signup", "share")
EVENT_WEIGHTS = (50, 25, 8, 5, 6, 2, 2, 2)
FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Radia",
    "Zoë",
    "José",
    "Łukasz",
    "Søren",
    "Chloé",
    "Mei",
    "Aarav",
    "Fatima",
    "Olu",
    "Yuki",
)
LAST = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Müller",
    "García",
    "Nowak",
    "Kierkegaard",
    "Dubois",
    "Chen",
    "Patel",
    "Haddad",
    "Adeyemi",
    "Sato",
)
WORDS = (
    "database",
    "replica",
    "router",
    "query",
    "index",
    "latency",
    "cache",
    "schema",
    "migration",
    "pool",
    "shard",
    "vacuum",
    "join",
    "cursor",
    "transaction",
    "lock",
    "event",
    "stream",
)
CUSTOMER_DOMAIN = "demo.switchyard.test"


@dataclass(frozen=True)
class DemoSizes:
    users: int = 1_000
    posts_per_user: int = 10
    events: int = 50_000
    days: int = 60
    customers: int = 2_000
    cache_entries: int = 500


@contextlib.contextmanager
def _explicit_timestamps(*models: type[Model]) -> Iterator[None]:
    """Let bulk inserts carry their own created/updated times (demo data spread over time)."""
    saved = []
    for model in models:
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                saved.append((field, field.auto_now, field.auto_now_add))
                field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def _clear_previous() -> None:
    demo_user_ids = list(User.objects.filter(username__startswith="demo_").values_list("id", flat=True))
    for start in range(0, len(demo_user_ids), 5_000):
        chunk = demo_user_ids[start : start + 5_000]
        Post.objects.filter(author_id__in=chunk).delete()
        UserProfile.objects.filter(user_id__in=chunk).delete()
    AnalyticsEvent.objects.filter(session_id__startswith="demo-").delete()
    User.objects.filter(username__startswith="demo_").delete()
    CacheEntry.objects.filter(key__startswith="demo:").delete()
    with allow_legacy_writes():
        LegacyCustomer.objects.filter(customer_email__endswith=f"@{CUSTOMER_DOMAIN}").delete()


class DemoUsernameTaken(ValueError):
    """A user who is not a demo row has a username that looks like a demo username."""


def _refuse_look_alikes(count: int, chunk: int = 5_000) -> None:
    """Refuse to seed over users whose usernames look like the demo ones (``dеmo_000003`` with a
    Cyrillic е) before anything is removed: users_db's unique look-alike index would refuse the
    demo rows half-way. (Rows named ``demo_*`` are the previous demo rows, replaced.)"""
    for start in range(1, count + 1, chunk):
        keys = [username_skeleton(f"demo_{i:06d}") for i in range(start, min(start + chunk, count + 1))]
        others = User.objects.filter(username_skeleton__in=keys).exclude(username__startswith="demo_")
        taken = list(others.values_list("id", "username")[:10])
        if taken:
            shown = ", ".join(f"{name!r} (id {pk})" for pk, name in taken)
            raise DemoUsernameTaken(f"users that look like demo users exist: {shown}; rename or delete them first")


def _copy_events(rows: list[tuple], alias: str) -> None:
    """PostgreSQL: one COPY for the batch."""
    connection = connections[alias]
    buffer = io.StringIO()
    for event_type, user_id, session_id, timestamp, data in rows:
        buffer.write(
            "\t".join(
                (
                    event_type,
                    "\\N" if user_id is None else str(user_id),
                    session_id,
                    timestamp.isoformat(),
                    json.dumps(data).replace("\\", "\\\\"),
                )
            )
            + "\n"
        )
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY analytics_event (event_type, user_id, session_id, timestamp, data) FROM STDIN"
        ) as copy,
    ):
        copy.write(buffer.getvalue())


def seed_demo(
    *,
    sizes: DemoSizes,
    seed: int = 42,
    batch_size: int = 5_000,
    progress: Callable[[str], None] = lambda message: None,
) -> str:
    """Replace the demo rows on every database; return the demo staff account's API token."""
    rng = random.Random(seed)
    now = timezone.now().replace(microsecond=0)

    _refuse_look_alikes(sizes.users)
    progress("removing previous demo rows")
    _clear_previous()

    progress(f"users_db: {sizes.users} users")
    users = []
    for i in range(1, sizes.users + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = now - dt.timedelta(days=rng.randint(0, 365), seconds=rng.randint(0, 86_399))
        users.append(
            User(
                username=f"demo_{i:06d}",
                email=f"demo_{i:06d}@example.com",
                first_name=first,
                last_name=last,
                created_at=created,
                updated_at=created,
            )
        )
    with _explicit_timestamps(User, Post, UserProfile):
        for start in range(0, len(users), batch_size):
            User.objects.bulk_create(users[start : start + batch_size], batch_size=batch_size)
        user_ids = list(User.objects.filter(username__startswith="demo_").order_by("id").values_list("id", flat=True))
        progress(f"users_db: {len(user_ids)} users written")

        profiles = [
            UserProfile(
                user_id=uid, bio=_sentence(rng, 8), avatar_url=f"https://avatars.example.com/{uid}.png", created_at=now
            )
            for uid in user_ids
        ]
        for start in range(0, len(profiles), batch_size):
            UserProfile.objects.bulk_create(profiles[start : start + batch_size], batch_size=batch_size)
        progress(f"default: {len(profiles)} profiles written")

        total_posts = 0
        batch: list[Post] = []
        for uid in user_ids:
            for _ in range(sizes.posts_per_user):
                created = now - dt.timedelta(days=rng.randint(0, 120), seconds=rng.randint(0, 86_399))
                batch.append(
                    Post(
                        title=_sentence(rng, 5)[:200],
                        content=_sentence(rng, 40),
                        author_id=uid,
                        created_at=created,
                        updated_at=created,
                    )
                )
                if len(batch) >= batch_size:
                    Post.objects.bulk_create(batch, batch_size=batch_size)
                    total_posts += len(batch)
                    batch = []
                    progress(f"default: {total_posts} posts written")
        if batch:
            Post.objects.bulk_create(batch, batch_size=batch_size)
            total_posts += len(batch)
        progress(f"default: {total_posts} posts written")

    alias = router.db_for_write(AnalyticsEvent)
    use_copy = connections[alias].vendor == "postgresql"
    span = max(sizes.days, 1) * 86_400
    written = 0
    while written < sizes.events:
        count = min(batch_size * 4 if use_copy else batch_size, sizes.events - written)
        rows = []
        for _ in range(count):
            user_id = rng.choice(user_ids) if user_ids and rng.random() < 0.9 else None
            event_type = rng.choices(EVENT_TYPES, EVENT_WEIGHTS)[0]
            data = {"path": f"/{rng.choice(WORDS)}/{rng.randint(1, 500)}", "demo": True}
            rows.append(
                (
                    event_type,
                    user_id,
                    f"demo-{rng.randint(1, 10**9):x}",
                    now - dt.timedelta(seconds=rng.randint(0, span)),
                    data,
                )
            )
        with transaction.atomic(using=alias):
            if use_copy:
                _copy_events(rows, alias)
            else:
                AnalyticsEvent.objects.bulk_create(
                    [
                        AnalyticsEvent(event_type=t, user_id=u, session_id=s, timestamp=ts, data=d)
                        for t, u, s, ts, d in rows
                    ],
                    batch_size=batch_size,
                )
        written += count
        progress(f"analytics_db: {written}/{sizes.events} events written")

    customers = [
        LegacyCustomer(
            customer_name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            customer_email=f"customer{i:06d}@{CUSTOMER_DOMAIN}",
            created_date=now - dt.timedelta(days=rng.randint(0, 3650)),
        )
        for i in range(1, sizes.customers + 1)
    ]
    with allow_legacy_writes():
        for start in range(0, len(customers), batch_size):
            LegacyCustomer.objects.bulk_create(customers[start : start + batch_size], batch_size=batch_size)
    progress(f"legacy_db: {len(customers)} customers written")

    entries = [
        CacheEntry(
            key=f"demo:user:{uid}:profile",
            value=json.dumps({"user_id": uid, "warm": True}),
            expires_at=now + dt.timedelta(hours=rng.randint(-24, 72)),
        )
        for uid in user_ids[: sizes.cache_entries]
    ]
    CacheEntry.objects.bulk_create(entries, batch_size=batch_size)
    progress(f"cache_db: {len(entries)} cache entries written")

    # A new staff token (every scope) each time: only its hash is stored, so an old key cannot be shown.
    from core.tokens.services import token_create

    return token_create(username="demo_admin", staff=True).key
