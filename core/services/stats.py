"""Cross-database figures, cached for ``STATS_CACHE_SECONDS``.

One query per database, concurrently; then one ``in_bulk`` on users_db for the top authors'
usernames:

- users_db: the number of users;
- default: posts per author, grouped once: the top 10 authors, and through window functions
  over the same grouping the total of posts and of authors;
- analytics_db: events by type in all and in the last 24 h / 7 d / 30 d, one statement on the
  daily and hourly rollups plus the raw rows of the partial hour at each window's start
  (:func:`core.analytics.selectors.counts_query`);
- legacy_db: the number of customers;
- cache_db: the number of application cache entries.

``rows`` gives each alias's rows in the table the figure above counts. A source that fails is
``null`` in the answer and listed in ``degraded``; such an answer is not cached.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from core import aliases
from core.analytics.selectors import window_counts
from core.blog.models import Post
from core.cache.models import CacheEntry
from core.legacy.models import LegacyCustomer
from core.services import cached
from core.services.fanout import FanOutResult, fan_out
from core.services.sql import iso
from core.users.models import User
from core.users.selectors import usernames_by_id

TOP_AUTHORS = 10
WINDOWS = (("last_24h", dt.timedelta(hours=24)), ("last_7d", dt.timedelta(days=7)), ("last_30d", dt.timedelta(days=30)))

_USERS_SQL = f"SELECT COUNT(*) FROM {User._meta.db_table}"
_AUTHORS_SQL = (
    "SELECT author_id, COUNT(*) AS n, SUM(COUNT(*)) OVER () AS posts, COUNT(*) OVER () AS authors "
    f"FROM {Post._meta.db_table} GROUP BY author_id ORDER BY n DESC, author_id LIMIT %s"
)
_CUSTOMERS_SQL = f"SELECT COUNT(*) FROM {LegacyCustomer._meta.db_table}"
_CACHE_ENTRIES_SQL = f"SELECT COUNT(*) FROM {CacheEntry._meta.db_table}"


def _count(sql: str, alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


def _users(alias: str) -> int:
    return _count(_USERS_SQL, alias)


def _posts(alias: str) -> dict[str, Any]:
    with connections[alias].cursor() as cursor:
        cursor.execute(_AUTHORS_SQL, [TOP_AUTHORS])
        rows = cursor.fetchall()
    return {
        "total": int(rows[0][2]) if rows else 0,
        "authors": int(rows[0][3]) if rows else 0,
        "top": [(author_id, int(n)) for author_id, n, _, _ in rows],
    }


def _events(now: dt.datetime, alias: str) -> dict[str, Any]:
    counts = window_counts(alias, {"total": (None, None), **{name: (now - delta, None) for name, delta in WINDOWS}})
    by_type = {
        event_type: {"total": total, **{name: counts[name].get(event_type, 0) for name, _ in WINDOWS}}
        for event_type, total in sorted(counts["total"].items())
    }
    totals = {name: sum(t[name] for t in by_type.values()) for name in ("total", *(n for n, _ in WINDOWS))}
    return {**totals, "by_type": by_type}


def _customers(alias: str) -> int:
    return _count(_CUSTOMERS_SQL, alias)


def _cache_entries(alias: str) -> int:
    return _count(_CACHE_ENTRIES_SQL, alias)


def _usernames(ids: list[int], alias: str) -> dict[int, str]:
    return usernames_by_id(user_ids=ids, using=alias)


def _read_cache(alias: str | None) -> dict[str, Any] | None:
    return cached.get(cached.STATS_KEY)


def compute_stats() -> tuple[dict[str, Any], FanOutResult]:
    """The figures, uncached; returns them with the fan-out record (sources, degraded)."""
    now = timezone.now()
    got = fan_out(
        {
            aliases.USERS: _users,
            aliases.DEFAULT: _posts,
            aliases.ANALYTICS: lambda alias: _events(now, alias),
            aliases.LEGACY: _customers,
            aliases.CACHE: _cache_entries,
        }
    )
    posts = got.results[aliases.DEFAULT]
    top_authors = None
    if posts is not None:
        ids = [author_id for author_id, _ in posts["top"]]
        names: dict[int, str] | None = {}
        if ids and aliases.USERS not in got.degraded:
            second = fan_out({aliases.USERS: lambda alias: _usernames(ids, alias)})
            got.merge(second)
            names = second.results[aliases.USERS]
        elif ids:
            names = None
        top_authors = [
            {"author_id": author_id, "username": names.get(author_id) if names is not None else None, "post_count": n}
            for author_id, n in posts["top"]
        ]
    users = got.results[aliases.USERS]
    events = got.results[aliases.ANALYTICS]
    customers = got.results[aliases.LEGACY]
    entries = got.results[aliases.CACHE]
    figures = {
        "generated_at": iso(now),
        "users": None if users is None else {"total": users},
        "posts": None if posts is None else {"total": posts["total"], "authors": posts["authors"]},
        "events": events,
        "legacy_customers": None if customers is None else {"total": customers},
        "top_authors": top_authors,
        "rows": {
            aliases.DEFAULT: None if posts is None else posts["total"],
            aliases.USERS: users,
            aliases.ANALYTICS: None if events is None else events["total"],
            aliases.LEGACY: customers,
            aliases.CACHE: entries,
        },
    }
    return figures, got


def stats() -> dict[str, Any]:
    """The figures, from the cache when they are younger than ``STATS_CACHE_SECONDS``."""
    cache_source = cached.source_name()
    first = fan_out({cache_source: _read_cache})
    figures = first.results[cache_source]
    if figures:
        return {**figures, "cached": True, "sources": first.sources, "degraded": first.degraded}
    figures, got = compute_stats()
    if not got.degraded and settings.STATS_CACHE_SECONDS > 0:
        cached.set_quietly(cached.STATS_KEY, figures, settings.STATS_CACHE_SECONDS)
    first.merge(got)
    return {**figures, "cached": False, "sources": first.sources, "degraded": first.degraded}
