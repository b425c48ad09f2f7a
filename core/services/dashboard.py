"""The user dashboard: one query per database, run concurrently (:mod:`core.services.fanout`),
joined in Python.

- users_db: the user (essential: missing is :class:`NotFound`, down is ``SourceUnavailable``);
- default: the 10 newest posts of the user;
- analytics_db: the user's event counts of the last 30 days by type (one statement on the per-user
  daily rollup plus the user's raw rows of the window's first, partial day);
- the cache: the user's cached stats entry (the one ``GET /users/{id}/stats/`` keeps), or null.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.analytics.selectors import counts_query
from core.blog.models import Post
from core.blog.selectors import recent_posts_statement
from core.errors import NotFound
from core.services import cached, fanout
from core.services.sql import iso, valid_id
from core.users.models import User
from core.users.selectors import LIST_FIELDS, user_statement

RECENT_POSTS = 10
ANALYTICS_DAYS = 30


def fetch_user(user_id: int) -> fanout.Part:
    def build(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
        if not rows:
            raise NotFound("user", user_id)
        user = dict(zip(LIST_FIELDS, rows[0], strict=True))
        return {**user, "created_at": iso(user["created_at"]), "updated_at": iso(user["updated_at"])}

    return fanout.statement(User, lambda alias: user_statement(alias, user_id=user_id), build)


def fetch_recent_posts(user_id: int) -> fanout.Part:
    def build(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [{"id": i, "title": t, "created_at": iso(c), "updated_at": iso(u)} for i, t, c, u in rows]

    return fanout.statement(
        Post, lambda alias: recent_posts_statement(alias, author_id=user_id, limit=RECENT_POSTS), build
    )


def fetch_event_counts(user_id: int, since: dt.datetime) -> fanout.Part:
    def build(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
        by_type = {event_type: int(count) for event_type, count in rows if int(count)}
        return {"days": ANALYTICS_DAYS, "since": iso(since), "total": sum(by_type.values()), "by_type": by_type}

    window = {"w": (since, None)}
    return fanout.statement(
        AnalyticsEvent, lambda alias: counts_query(alias, window, user_id=user_id, labelled=False), build
    )


def fetch_cached_stats(user_id: int) -> fanout.Part:
    def run(alias: str | None) -> dict[str, Any] | None:
        entry = cached.get(cached.user_stats_key(user_id))
        return {**entry["stats"], "computed_at": entry["computed_at"]} if entry else None

    return fanout.part(cached.source_name(), run, cheap=True)


def user_dashboard(*, user_id: int) -> dict[str, Any]:
    """The dashboard of ``user_id`` (see the module doc); raises NotFound / SourceUnavailable."""
    if not valid_id(user_id):
        raise NotFound("user", user_id)
    since = timezone.now() - dt.timedelta(days=ANALYTICS_DAYS)
    cache_source = cached.source_name()
    got = fanout.fan_out(
        {
            aliases.USERS: fetch_user(user_id),
            aliases.DEFAULT: fetch_recent_posts(user_id),
            aliases.ANALYTICS: fetch_event_counts(user_id, since),
            cache_source: fetch_cached_stats(user_id),
        },
        essential={aliases.USERS},
    )
    return {
        "user": got.results[aliases.USERS],
        "recent_posts": got.results[aliases.DEFAULT],
        "analytics": got.results[aliases.ANALYTICS],
        "cached_stats": got.results[cache_source],
        "sources": got.sources,
        "degraded": got.degraded,
    }
