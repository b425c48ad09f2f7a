"""Sync users into cache entries (cache_db) and record the sync on analytics_db, in bulk.

For each batch of users (keyset pagination by id on users_db) the service runs a fixed number of
queries whatever the batch holds: one SELECT on users_db, one grouped post count on default, one
``INSERT ... ON CONFLICT (key) DO UPDATE`` on cache_db (``bulk_create(update_conflicts=True)``) and
one bulk INSERT of ``user_synced`` events on analytics_db. Running it again rewrites the same cache
entries (idempotent); each run is recorded with its own ``sync_id``.

Cache key convention (see :mod:`core.services.user_deletion`): ``user:<id>:summary``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import router, transaction
from django.db.models import Count
from django.utils import timezone

from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.cache.models import CacheEntry
from core.services.user_deletion import cache_key_prefix
from core.users.fence import users_fenced
from core.users.models import User

EVENT_TYPE = "user_synced"

Progress = Callable[[int, int, int], None]  # batch number, users in the batch, users so far


def summary_key(user_id: int) -> str:
    return f"{cache_key_prefix(user_id)}summary"


@dataclass
class SyncReport:
    sync_id: str
    users: int = 0
    batches: int = 0
    missing_ids: list[int] = field(default_factory=list)


def _batches(queryset, batch_size: int) -> Iterable[list[User]]:
    last = 0
    while True:
        batch = list(queryset.filter(pk__gt=last).order_by("pk")[:batch_size])
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        last = batch[-1].pk


def users_sync(
    *,
    since: dt.timedelta | None = None,
    ids: list[int] | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Write ``user:<id>:summary`` for the users updated within ``since`` (or the users ``ids``)."""
    batch_size = batch_size or settings.SYNC_BATCH_SIZE
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    queryset = User.objects.filter(deleting_saga_id__isnull=True)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    elif since is not None:
        queryset = queryset.filter(updated_at__gte=timezone.now() - since)
    report = SyncReport(sync_id=uuid.uuid4().hex)
    seen: set[int] = set()
    for number, batch in enumerate(_batches(queryset, batch_size), start=1):
        now = timezone.now()
        user_ids = [u.pk for u in batch]
        post_counts = dict(
            Post.objects.filter(author_id__in=user_ids)
            .values("author_id")
            .annotate(n=Count("id"))
            .values_list("author_id", "n")
        )
        expires_at = now + dt.timedelta(seconds=settings.SYNC_CACHE_SECONDS)
        entries = [
            CacheEntry(
                key=summary_key(u.pk),
                value=json.dumps(
                    {
                        "id": u.pk,
                        "username": u.username,
                        "email": u.email,
                        "first_name": u.first_name,
                        "last_name": u.last_name,
                        "post_count": post_counts.get(u.pk, 0),
                        "updated_at": u.updated_at,
                    },
                    cls=DjangoJSONEncoder,
                    sort_keys=True,
                ),
                expires_at=expires_at,
            )
            for u in batch
        ]
        # Fenced (core.users.fence): a user whose deletion began meanwhile gets no cache entry or
        # event, and the deletion waits for this batch's writes to commit (then removes them).
        with users_fenced(user_ids, strict=False) as live:
            entries = [e for e, u in zip(entries, batch) if u.pk in live]
            batch = [u for u in batch if u.pk in live]
            if entries:
                with transaction.atomic(using=router.db_for_write(CacheEntry)):
                    CacheEntry.objects.bulk_create(
                        entries,
                        update_conflicts=True,
                        unique_fields=["key"],
                        update_fields=["value", "expires_at"],
                        batch_size=len(entries),
                    )
                with transaction.atomic(using=router.db_for_write(AnalyticsEvent)):
                    AnalyticsEvent.objects.bulk_create(
                        [
                            AnalyticsEvent(
                                event_type=EVENT_TYPE, user_id=u.pk, timestamp=now, data={"sync_id": report.sync_id}
                            )
                            for u in batch
                        ],
                        batch_size=len(batch),
                    )
        user_ids = [u.pk for u in batch]
        seen.update(user_ids)
        report.users += len(batch)
        report.batches = number
        if progress is not None:
            progress(number, len(batch), report.users)
    if ids is not None:
        report.missing_ids = sorted(set(ids) - seen)
    return report
