"""Reports in parameterised SQL. ``new_user_activity``: users who joined in the last 7 days and
their events since then, one statement on users_db, then one on analytics_db for those ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from core import aliases
from core.analytics.selectors import window_counts
from core.services import fanout
from core.services.sql import iso
from core.users.selectors import users_joined_since

NEW_USER_DAYS = 7
#: The report lists at most this many users (the newest) by default; ``truncated`` says when there
#: were more.
MAX_USERS = 5000


def _event_counts(ids: list[int], since: dt.datetime, alias: str) -> dict[int, int]:
    """Events per user since ``since``: the per-user daily rollup plus the users' raw rows of the
    window's first, partial day (:func:`core.analytics.selectors.counts_query`)."""
    counts: dict[int, int] = {}
    for (user_id, _event_type), n in window_counts(alias, {"w": (since, None)}, user_ids=ids, by_user=True)[
        "w"
    ].items():
        counts[user_id] = counts.get(user_id, 0) + n
    return counts


def new_user_activity(*, days: int = NEW_USER_DAYS, max_users: int = MAX_USERS) -> dict[str, Any]:
    """The users who joined in the last ``days`` days (at most ``max_users``, the newest) and their
    events since then."""
    since = timezone.now() - dt.timedelta(days=days)
    new_users = users_joined_since(since=since).values_list("id", "username", "email", "created_at")
    got = fanout.fan_out({aliases.USERS: fanout.query(new_users[: max_users + 1])}, essential={aliases.USERS})
    rows = got.results[aliases.USERS]
    truncated = len(rows) > max_users
    rows = rows[:max_users]
    counts: dict[int, int] | None = {}
    if rows:
        ids = [r[0] for r in rows]
        second = fanout.fan_out({aliases.ANALYTICS: lambda alias: _event_counts(ids, since, alias)})
        got.merge(second)
        counts = second.results[aliases.ANALYTICS]
    users = [
        {
            "id": r[0],
            "username": r[1],
            "email": r[2],
            "created_at": iso(r[3]),
            "event_count": None if counts is None else counts.get(r[0], 0),
        }
        for r in rows
    ]
    return {
        "days": days,
        "since": iso(since),
        "total_users": len(users),
        "total_events": None if counts is None else sum(counts.values()),
        "truncated": truncated,
        "users": users,
        "sources": got.sources,
        "degraded": got.degraded,
    }
