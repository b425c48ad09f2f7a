"""The reference checker: cross-database orphans of every kind, found (and removed) in batches.

Kinds (a row naming a user id of users_db, or a cache entry ``user:<id>:...``):

- ``posts`` (default, ``blog_post.author_id``), ``profiles`` (default, ``user_profile.user_id``);
- ``events`` (analytics_db, ``user_id``), only with ``USER_DELETION_ANALYTICS=delete`` (with
  ``anonymise`` an event's ``user_id`` is what the client said and need not name a user);
- ``cache`` (cache_db, keys ``user:<id>:*``, the convention of :mod:`core.services.user_deletion`).

Each kind is scanned in keyset order (``WHERE pk > last ORDER BY pk LIMIT n`` on the table's
primary key or unique key), one query per batch on the kind's database and one on users_db's
primary (``id IN (ids of the batch)``): the cost grows with the rows, never with their square, and
no query holds a lock or a long snapshot. A candidate (a row whose user was not found) is read
again *after* users_db answered, and counts only if it is still there: the deletion saga removes
dependents before the user and restores the user before the dependents, so a row still present
after its user was found missing is an orphan, not a row caught mid-deletion. ``fix`` removes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from core.analytics import services as analytics_services
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.users.models import User
from core.users.selectors import usernames_by_id

DEFAULT_BATCH_SIZE = 10_000
KINDS = ("posts", "profiles", "events", "cache")


@dataclass
class KindReport:
    kind: str
    scanned: int = 0
    orphans: int = 0
    removed: int = 0
    batches: int = 0
    skipped: str = ""


Progress = Callable[[KindReport], None]


def existing_users(ids: Iterable[int]) -> set[int]:
    """The ids of ``ids`` that exist on users_db's primary (one query)."""
    # The one users-by-id selector, on the primary (a replica's lag would make a new user's rows
    # look orphaned).
    return set(usernames_by_id(user_ids=ids, using=User.objects.primary().db))


def _scan_rows(model: Any, ref: str, batch_size: int, extra: dict[str, Any]) -> Iterable[list[tuple[Any, int]]]:
    last = None
    rows_of = model.objects.filter(**extra).order_by("pk")
    while True:
        page = rows_of if last is None else rows_of.filter(pk__gt=last)
        rows = list(page.values_list("pk", ref)[:batch_size])
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1][0]


def _user_of_key(key: str) -> int | None:
    parts = key.split(":", 2)
    if len(parts) < 3 or parts[0] != "user" or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    return int(parts[1])


def _scan_cache(batch_size: int) -> Iterable[list[tuple[Any, int]]]:
    last = None
    entries = CacheEntry.objects.filter(key__startswith="user:").order_by("key")
    while True:
        page = entries if last is None else entries.filter(key__gt=last)
        keys = list(page.values_list("key", flat=True)[:batch_size])
        if not keys:
            return
        yield [(key, uid) for key in keys if (uid := _user_of_key(key)) is not None]
        if len(keys) < batch_size:
            return
        last = keys[-1]


def _check_kind(kind: str, *, fix: bool, batch_size: int, progress: Progress | None) -> KindReport:
    report = KindReport(kind)
    if kind == "events" and settings.USER_DELETION_ANALYTICS != "delete":
        report.skipped = "USER_DELETION_ANALYTICS=anonymise: events need not name a user"
        return report
    if kind == "cache":
        batches = _scan_cache(batch_size)
        model, ref, key_field = CacheEntry, None, "key"
    else:
        model, ref = {
            "posts": (Post, "author_id"),
            "profiles": (UserProfile, "user_id"),
            "events": (AnalyticsEvent, "user_id"),
        }[kind]
        key_field = "pk"
        batches = _scan_rows(model, ref, batch_size, {f"{ref}__isnull": False} if kind == "events" else {})
    for rows in batches:
        report.batches += 1
        report.scanned += len(rows)
        missing = {uid for _, uid in rows} - existing_users(uid for _, uid in rows)
        if missing:
            candidates = [pk for pk, uid in rows if uid in missing]
            # Read again after users_db answered: still there and its user missing -> an orphan.
            if kind == "cache":
                still = CacheEntry.objects.filter(key__in=candidates)
                orphans = [k for k in still.values_list("key", flat=True) if _user_of_key(k) in missing]
                still = CacheEntry.objects.filter(key__in=orphans)
            else:
                still = model.objects.filter(**{f"{key_field}__in": candidates, f"{ref}__in": missing})
                orphans = list(still.values_list("pk", flat=True))
            if fix and orphans and kind == "events":
                # All events of those users go at once (later batches then find none of them):
                # each one removed was an orphan, so each is counted.
                gone = set(still.values_list("user_id", flat=True))
                removed = analytics_services.events_delete_for_users(user_ids=gone)
                report.removed += removed
                report.orphans += max(removed, len(orphans))
            else:
                report.orphans += len(orphans)
                if fix and orphans:
                    report.removed += still.delete()[0]
        if progress is not None:
            progress(report)
    return report


def check_references(
    *,
    fix: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    kinds: Iterable[str] = KINDS,
    progress: Progress | None = None,
) -> list[KindReport]:
    """Scan every kind (see the module docstring); remove the orphans found when ``fix``."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    return [_check_kind(kind, fix=fix, batch_size=batch_size, progress=progress) for kind in kinds]
