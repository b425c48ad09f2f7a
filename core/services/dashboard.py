"""The user dashboard: one query per database, run concurrently, joined in Python.

- users_db: the user (essential: missing is :class:`NotFound`, down is ``SourceUnavailable``);
- default: the 10 newest posts of the user;
- analytics_db: the user's event counts of the last 30 days by type (one statement on the per-user
  daily rollup plus the user's raw rows of the window's first, partial day);
- the cache: the user's cached stats entry (the one ``GET /users/{id}/stats/`` keeps), or null.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from django.utils import timezone

from core import aliases
from core.analytics.selectors import counts_query
from core.blog.models import Post
from core.errors import NotFound
from core.services import cached
from core.services.fanout import Select, fan_out
from core.services.sql import iso, valid_id
from core.users.models import User

RECENT_POSTS = 10
ANALYTICS_DAYS = 30

_USER_SQL = (
    "SELECT id, username, email, first_name, last_name, created_at, updated_at "
    f"FROM {User._meta.db_table} WHERE id = %s"
)
_POSTS_SQL = (
    f"SELECT id, title, created_at, updated_at FROM {Post._meta.db_table} "
    "WHERE author_id = %s ORDER BY created_at DESC, id DESC LIMIT %s"
)


def user_from_rows(user_id: int, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    if not rows:
        raise NotFound("user", user_id)
    row = rows[0]
    return {
        "id": row[0],
        "username": row[1],
        "email": row[2],
        "first_name": row[3],
        "last_name": row[4],
        "created_at": iso(row[5]),
        "updated_at": iso(row[6]),
    }


def posts_from_rows(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{"id": r[0], "title": r[1], "created_at": iso(r[2]), "updated_at": iso(r[3])} for r in rows]


def event_counts_from_rows(since: dt.datetime, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    by_type = {event_type: int(count) for event_type, count in rows if int(count)}
    return {"days": ANALYTICS_DAYS, "since": iso(since), "total": sum(by_type.values()), "by_type": by_type}


def fetch_user(user_id: int) -> Select:
    return Select(_USER_SQL, [user_id], partial(user_from_rows, user_id))


def fetch_recent_posts(user_id: int) -> Select:
    return Select(_POSTS_SQL, [user_id, RECENT_POSTS], posts_from_rows)


def fetch_event_counts(user_id: int, since: dt.datetime) -> Select:
    # The statement's text is the same on every vendor here (one user, no IN list); only the
    # parameters' form depends on the driver.
    sql, _ = counts_query(aliases.ANALYTICS, {"w": (since, None)}, user_id=user_id, labelled=False)
    return Select(
        sql,
        lambda alias: counts_query(alias, {"w": (since, None)}, user_id=user_id, labelled=False)[1],
        partial(event_counts_from_rows, since),
    )


def fetch_cached_stats(user_id: int, alias: str | None) -> dict[str, Any] | None:
    entry = cached.get(cached.user_stats_key(user_id))
    if not entry:
        return None
    return {**entry["stats"], "computed_at": entry["computed_at"]}


def user_dashboard(*, user_id: int) -> dict[str, Any]:
    """The dashboard of ``user_id`` (see the module doc); raises NotFound / SourceUnavailable."""
    if not valid_id(user_id):
        raise NotFound("user", user_id)
    since = timezone.now() - dt.timedelta(days=ANALYTICS_DAYS)
    cache_source = cached.source_name()
    got = fan_out(
        {
            aliases.USERS: fetch_user(user_id),
            aliases.DEFAULT: fetch_recent_posts(user_id),
            aliases.ANALYTICS: fetch_event_counts(user_id, since),
            cache_source: partial(fetch_cached_stats, user_id),
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
