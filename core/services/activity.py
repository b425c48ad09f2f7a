"""Users who joined in the last N days, with their posts and event counts (one query per database).

users_db first (the page of users, with the total through ``COUNT(*) OVER ()``), then default
and analytics_db concurrently on that page's ids: each user's newest posts and post count in one
windowed query, and their events within the window grouped by user and type in one query.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from core import aliases
from core.analytics.selectors import event_type_counts_of_users
from core.blog.models import Post
from core.blog.selectors import newest_posts_of_authors_statement
from core.errors import NotFound
from core.services import fanout
from core.services.sql import iso
from core.users.models import User
from core.users.selectors import users_page_statement

POSTS_PER_USER = 5


def _users(rows: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], int]:
    users = [{"id": r[0], "username": r[1], "email": r[2], "created_at": iso(r[3])} for r in rows]
    return users, (int(rows[0][4]) if rows else 0)


def _posts(rows: list[tuple[Any, ...]]) -> dict[int, dict[str, Any]]:
    result: dict[int, dict[str, Any]] = {}
    for post_id, title, created_at, author_id, n in rows:
        entry = result.setdefault(author_id, {"post_count": int(n), "posts": []})
        entry["posts"].append({"id": post_id, "title": title, "created_at": iso(created_at)})
    return result


def _events(rows: Any) -> dict[int, dict[str, Any]]:
    result: dict[int, dict[str, Any]] = {}
    for row in rows:
        entry = result.setdefault(row["user_id"], {"total": 0, "by_type": {}})
        entry["total"] += int(row["n"])
        entry["by_type"][row["event_type"]] = int(row["n"])
    return result


def recent_users_activity(*, days: int, page: int = 1, page_size: int = 20) -> dict[str, Any]:
    """``{days, since, count, results: [{id, username, email, created_at, post_count, posts, events}],
    sources, degraded}``; NotFound for a page past the end, SourceUnavailable when users_db is down."""
    since = timezone.now() - dt.timedelta(days=days)
    offset = (page - 1) * page_size
    users_page = fanout.statement(
        User, lambda alias: users_page_statement(alias, since=since, limit=page_size, offset=offset), _users
    )
    first = fanout.fan_out({aliases.USERS: users_page}, essential={aliases.USERS})
    users, count = first.results[aliases.USERS]
    if not users and page > 1:
        raise NotFound("page", page)
    if users:
        ids = [u["id"] for u in users]
        second = fanout.fan_out(
            {
                aliases.DEFAULT: fanout.statement(
                    Post,
                    lambda alias: newest_posts_of_authors_statement(alias, author_ids=ids, per_author=POSTS_PER_USER),
                    _posts,
                ),
                aliases.ANALYTICS: fanout.query(event_type_counts_of_users(user_ids=ids, since=since), _events),
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
