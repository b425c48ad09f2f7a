"""Users who joined in the last N days, with their posts and event counts (one query per database).

users_db first (the page of users, with the total through ``COUNT(*) OVER ()``), then default
and analytics_db concurrently on that page's ids: each user's newest posts and post count in one
windowed query, and their events within the window grouped by user and type in one query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connections
from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.errors import NotFound
from core.services.fanout import fan_out
from core.services.sql import datetime_param, in_clause, iso
from core.users.models import User

POSTS_PER_USER = 5

_USERS_SQL = (
    f"SELECT id, username, email, created_at, COUNT(*) OVER () FROM {User._meta.db_table} "
    "WHERE created_at >= %s ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s"
)


def _users_page(since: dt.datetime, page: int, page_size: int, alias: str) -> tuple[list[dict[str, Any]], int]:
    with connections[alias].cursor() as cursor:
        cursor.execute(_USERS_SQL, [datetime_param(alias, since), page_size, (page - 1) * page_size])
        rows = cursor.fetchall()
    users = [{"id": r[0], "username": r[1], "email": r[2], "created_at": iso(r[3])} for r in rows]
    return users, (int(rows[0][4]) if rows else 0)


def _posts_of(ids: list[int], alias: str) -> dict[int, dict[str, Any]]:
    condition, params = in_clause(alias, "author_id", ids)
    sql = (
        "SELECT id, title, created_at, author_id, n FROM ("
        "SELECT id, title, created_at, author_id, "
        "ROW_NUMBER() OVER (PARTITION BY author_id ORDER BY created_at DESC, id DESC) AS rn, "
        "COUNT(*) OVER (PARTITION BY author_id) AS n "
        f"FROM {Post._meta.db_table} WHERE {condition}) AS ranked "
        "WHERE rn <= %s ORDER BY author_id, rn"
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [*params, POSTS_PER_USER])
        rows = cursor.fetchall()
    result: dict[int, dict[str, Any]] = {}
    for post_id, title, created_at, author_id, n in rows:
        entry = result.setdefault(author_id, {"post_count": int(n), "posts": []})
        entry["posts"].append({"id": post_id, "title": title, "created_at": iso(created_at)})
    return result


def _events_of(ids: list[int], since: dt.datetime, alias: str) -> dict[int, dict[str, Any]]:
    condition, params = in_clause(alias, "user_id", ids)
    sql = (
        f"SELECT user_id, event_type, COUNT(*) FROM {AnalyticsEvent._meta.db_table} "
        f'WHERE {condition} AND "timestamp" >= %s GROUP BY user_id, event_type'
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [*params, datetime_param(alias, since)])
        rows = cursor.fetchall()
    result: dict[int, dict[str, Any]] = {}
    for user_id, event_type, count in rows:
        entry = result.setdefault(user_id, {"total": 0, "by_type": {}})
        entry["total"] += int(count)
        entry["by_type"][event_type] = int(count)
    return result


def recent_users_activity(*, days: int, page: int = 1, page_size: int = 20) -> dict[str, Any]:
    """``{days, since, count, results: [{id, username, email, created_at, post_count, posts, events}],
    sources, degraded}``; NotFound for a page past the end, SourceUnavailable when users_db is down."""
    since = timezone.now() - dt.timedelta(days=days)
    first = fan_out(
        {aliases.USERS: lambda alias: _users_page(since, page, page_size, alias)}, essential={aliases.USERS}
    )
    users, count = first.results[aliases.USERS]
    if not users and page > 1:
        raise NotFound("page", page)
    if users:
        ids = [u["id"] for u in users]
        second = fan_out(
            {
                aliases.DEFAULT: lambda alias: _posts_of(ids, alias),
                aliases.ANALYTICS: lambda alias: _events_of(ids, since, alias),
            }
        )
        first.merge(second)
        posts, events = second.results[aliases.DEFAULT], second.results[aliases.ANALYTICS]
        no_events = {"total": 0, "by_type": {}}
        for user in users:
            mine = posts.get(user["id"]) if posts is not None else None
            user["post_count"] = None if posts is None else (mine["post_count"] if mine else 0)
            user["posts"] = None if posts is None else (mine["posts"] if mine else [])
            user["events"] = None if events is None else events.get(user["id"], no_events)
    return {
        "days": days,
        "since": iso(since),
        "count": count,
        "results": users,
        "sources": first.sources,
        "degraded": first.degraded,
    }
