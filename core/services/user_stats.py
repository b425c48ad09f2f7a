"""A user's stats (post count, events of the last 7 days), kept in Django's cache.

A hit costs one cache read. A miss reads users_db (essential), default and analytics_db
concurrently, one query each, and caches the answer for ``USER_STATS_CACHE_SECONDS`` unless a
source was degraded. :mod:`core.services.invalidation` drops the entry when the user or one of
their posts changes.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.errors import NotFound
from core.services import cached
from core.services.fanout import fan_out
from core.services.sql import datetime_param, iso, valid_id
from core.users.models import User

ACTIVITY_DAYS = 7

_USER_SQL = f"SELECT id, username, email FROM {User._meta.db_table} WHERE id = %s"
_POST_COUNT_SQL = f"SELECT COUNT(*) FROM {Post._meta.db_table} WHERE author_id = %s"
_ACTIVITY_SQL = f'SELECT COUNT(*) FROM {AnalyticsEvent._meta.db_table} WHERE user_id = %s AND "timestamp" >= %s'


def _user(user_id: int, alias: str) -> dict[str, Any]:
    with connections[alias].cursor() as cursor:
        cursor.execute(_USER_SQL, [user_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("user", user_id)
    return {"id": row[0], "username": row[1], "email": row[2]}


def _scalar(sql: str, params: list[Any], alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def _post_count(user_id: int, alias: str) -> int:
    return _scalar(_POST_COUNT_SQL, [user_id], alias)


def _recent_activity(user_id: int, since: dt.datetime, alias: str) -> int:
    return _scalar(_ACTIVITY_SQL, [user_id, datetime_param(alias, since)], alias)


def _read_cache(user_id: int, alias: str | None) -> dict[str, Any] | None:
    return cached.get(cached.user_stats_key(user_id))


def user_stats(*, user_id: int) -> dict[str, Any]:
    """``{user, stats: {post_count, recent_activity, recent_activity_days}, computed_at, cached,
    sources, degraded}``; raises NotFound / SourceUnavailable."""
    if not valid_id(user_id):
        raise NotFound("user", user_id)
    cache_source = cached.source_name()
    first = fan_out({cache_source: partial(_read_cache, user_id)})
    entry = first.results[cache_source]
    if entry:
        return {**entry, "cached": True, "sources": first.sources, "degraded": first.degraded}

    now = timezone.now()
    got = fan_out(
        {
            aliases.USERS: partial(_user, user_id),
            aliases.DEFAULT: partial(_post_count, user_id),
            aliases.ANALYTICS: partial(_recent_activity, user_id, now - dt.timedelta(days=ACTIVITY_DAYS)),
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
        fan_out({cached.source_name(): lambda alias: cached.delete(*keys)})
