"""The aggregates' use of Django's cache framework (``CACHES``: Redis or a table on cache_db).

A cache that is down must not take the answer with it: reads and writes here treat the cache's
own errors as a miss (and log them); the caller decides what to report.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, cache
from django.core.cache.backends.db import DatabaseCache
from django.db import DatabaseError

from core import aliases

logger = logging.getLogger(__name__)


def _cache_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [DatabaseError, ConnectionError, TimeoutError]
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis is a pinned dependency
        pass
    else:
        errors.append(RedisError)
    return tuple(errors)


CACHE_ERRORS = _cache_errors()


def source_name() -> str:
    """How ``sources``/``degraded`` name the cache: its alias when it is the table on cache_db."""
    from django.core.cache import caches

    return aliases.CACHE if isinstance(caches[DEFAULT_CACHE_ALIAS], DatabaseCache) else "cache"


def user_stats_key(user_id: int) -> str:
    return f"user-stats:v1:{user_id}"


STATS_KEY = "stats:v1"


def get(key: str) -> Any:
    """The cached value, or None when absent; raises the cache's errors (the fan-out degrades them)."""
    return cache.get(key)


def get_or_none(key: str) -> Any:
    try:
        return cache.get(key)
    except CACHE_ERRORS as exc:
        logger.warning("cache read of %s failed: %s", key, exc)
        return None


def set_quietly(key: str, value: Any, timeout: float) -> bool:
    try:
        cache.set(key, value, timeout)
    except CACHE_ERRORS as exc:
        logger.warning("cache write of %s failed: %s", key, exc)
        return False
    return True


def delete(*keys: str) -> None:
    """Drop ``keys``; raises the cache's errors (the fan-out degrades them)."""
    cache.delete_many(list(keys))


def delete_quietly(*keys: str) -> None:
    try:
        cache.delete_many(list(keys))
    except CACHE_ERRORS as exc:
        logger.warning("cache delete of %s failed: %s", keys, exc)
