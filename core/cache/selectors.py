"""Reads of the application cache entries (cache_db)."""

from __future__ import annotations

from django.db.models import QuerySet

from core.cache.models import CacheEntry


def cache_entry_list() -> QuerySet[CacheEntry]:
    return CacheEntry.objects.all()
