"""A user's stats (post count, events of the last 7 days), kept in Django's cache.

A hit costs one cache read. A miss reads users_db (essential), default and analytics_db
concurrently, one query each, and caches the answer for ``USER_STATS_CACHE_SECONDS`` unless a
source was degraded. :mod:`core.services.invalidation` drops the entry when the user or one of
their posts changes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone

from core import aliases
from core.analytics.selectors import events_since
from core.blog.selectors import post_count_of_author
from core.errors import NotFound
from core.services import cached, fanout
from core.services.sql import iso, valid_id
from core.users.models import User
from core.users.selectors import user_statement

ACTIVITY_DAYS = 7


def _user(user_id: int) -> fanout.Part:
    def build(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
        if not rows:
            raise NotFound("user", user_id)
        return dict(zip(("id", "username", "email"), rows[0], strict=True))

    fields = ("id", "username", "email")
    return fanout.statement(User, lambda alias: user_statement(alias, user_id=user_id, fields=fields), build)


def _count(queryset: Any) -> int:
    return queryset.count()


def _read_cache(user_id: int) -> fanout.Part:
    return fanout.part(cached.source_name(), lambda alias: cached.get(cached.user_stats_key(user_id)), cheap=True)


def user_stats(*, user_id: int) -> dict[str, Any]:
    """``{user, stats: {post_count, recent_activity, recent_activity_days}, computed_at, cached,
    sources, degraded}``; raises NotFound / SourceUnavailable."""
    if not valid_id(user_id):
        raise NotFound("user", user_id)
    cache_source = cached.source_name()
    first = fanout.fan_out({cache_source: _read_cache(user_id)})
    entry = first.results[cache_source]
    if entry:
        return {**entry, "cached": True, "sources": first.sources, "degraded": first.degraded}

    now = timezone.now()
    since = now - dt.timedelta(days=ACTIVITY_DAYS)
    got = fanout.fan_out(
        {
            aliases.USERS: _user(user_id),
            aliases.DEFAULT: fanout.query(post_count_of_author(author_id=user_id), _count),
            aliases.ANALYTICS: fanout.query(events_since(since=since, user_id=user_id), _count),
        },
        essential={aliases.USERS},
    )
    entry = {
        "user": got.results[aliases.USERS],
        "stats": {
            "post_count": got.results[aliases.DEFAULT],
            "recent_activity": got.results[aliases.ANALYTICS],
            "recent_activity_days": ACTIVITY_DAYS,
        },
        "computed_at": iso(now),
    }
    if not got.degraded and not first.degraded:
        cached.set_quietly(cached.user_stats_key(user_id), entry, settings.USER_STATS_CACHE_SECONDS)
    first.merge(got)
    return {**entry, "cached": False, "sources": first.sources, "degraded": first.degraded}


def invalidate_user_stats(*user_ids: int | None) -> None:
    """Forget the cached stats of these users (None entries are ignored).

    The delete runs as a fan-out part: within the cache's budget, so that a slow or locked cache
    cannot stall the write that triggered it. When it fails the entry lives until it expires
    (``USER_STATS_CACHE_SECONDS``); the failure is logged.
    """
    keys = [cached.user_stats_key(uid) for uid in sorted({u for u in user_ids if u is not None})]
    if keys:
        fanout.fan_out({cached.source_name(): lambda alias: cached.delete(*keys)})
