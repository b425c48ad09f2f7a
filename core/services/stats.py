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
from django.utils import timezone

from core import aliases
from core.analytics.selectors import window_counts
from core.blog.models import Post
from core.blog.selectors import top_authors_statement
from core.cache.selectors import cache_entry_list
from core.legacy.selectors import customer_list
from core.services import cached, fanout
from core.services.fanout import FanOutResult
from core.services.sql import iso
from core.users.selectors import user_list, usernames_by_id

TOP_AUTHORS = 10
WINDOWS = (("last_24h", dt.timedelta(hours=24)), ("last_7d", dt.timedelta(days=7)), ("last_30d", dt.timedelta(days=30)))


def _count(queryset: Any) -> int:
    return queryset.count()


def _posts(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    return {
        "total": int(rows[0][2]) if rows else 0,
        "authors": int(rows[0][3]) if rows else 0,
        "top": [(author_id, int(n)) for author_id, n, _, _ in rows],
    }


def _events(now: dt.datetime, alias: str | None) -> dict[str, Any]:
    windows = {"total": (None, None), **{name: (now - delta, None) for name, delta in WINDOWS}}
    counts = window_counts(alias, windows)  # type: ignore[arg-type]
    by_type = {
        event_type: {"total": total, **{name: counts[name].get(event_type, 0) for name, _ in WINDOWS}}
        for event_type, total in sorted(counts["total"].items())
    }
    totals = {name: sum(t[name] for t in by_type.values()) for name in ("total", *(n for n, _ in WINDOWS))}
    return {**totals, "by_type": by_type}


def compute_stats() -> tuple[dict[str, Any], FanOutResult]:
    """The figures, uncached; returns them with the fan-out record (sources, degraded)."""
    now = timezone.now()
    got = fanout.fan_out(
        {
            aliases.USERS: fanout.query(user_list(), _count),
            aliases.DEFAULT: fanout.statement(
                Post, lambda alias: top_authors_statement(alias, limit=TOP_AUTHORS), _posts
            ),
            aliases.ANALYTICS: lambda alias: _events(now, alias),
            aliases.LEGACY: fanout.query(customer_list(), _count),
            aliases.CACHE: fanout.query(cache_entry_list(), _count),
        }
    )
    posts = got.results[aliases.DEFAULT]
    top_authors = None
    if posts is not None:
        ids = [author_id for author_id, _ in posts["top"]]
        names: dict[int, str] | None = {}
        if ids and aliases.USERS not in got.degraded:
            second = fanout.fan_out({aliases.USERS: lambda alias: usernames_by_id(user_ids=ids, using=alias)})
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
    first = fanout.fan_out({cache_source: lambda alias: cached.get(cached.STATS_KEY)})
    figures = first.results[cache_source]
    if figures:
        return {**figures, "cached": True, "sources": first.sources, "degraded": first.degraded}
    figures, got = compute_stats()
    if not got.degraded and settings.STATS_CACHE_SECONDS > 0:
        cached.set_quietly(cached.STATS_KEY, figures, settings.STATS_CACHE_SECONDS)
    first.merge(got)
    return {**figures, "cached": False, "sources": first.sources, "degraded": first.degraded}
