"""The aggregates' cache (``CACHES["default"]``: the Redis of ``CACHE_URL``, or a table on cache_db).

On Redis the values go through this process's kept redis-py client (:mod:`core.shared_cache`:
about a third of the CPU of a read through Django's ``RedisCache``, which makes a client per
operation), pickled as Django pickles them, under the cache's ``KEY_PREFIX``; the table on
cache_db goes through Django's cache framework.

A cache that is down must not take the answer with it: reads and writes here treat the cache's
own errors as a miss (and log them); the caller decides what to report.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, cache
from django.core.cache.backends.db import DatabaseCache
from django.db import DatabaseError

from core import aliases, shared_cache

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
    client = shared_cache.client_for(DEFAULT_CACHE_ALIAS)
    if client is None:
        return cache.get(key)
    raw = client.get(shared_cache.key_for(DEFAULT_CACHE_ALIAS, key))
    return None if raw is None else pickle.loads(raw)


def get_or_none(key: str) -> Any:
    try:
        return get(key)
    except CACHE_ERRORS as exc:
        logger.warning("cache read of %s failed: %s", key, exc)
        return None


def set_quietly(key: str, value: Any, timeout: float | None) -> bool:
    try:
        client = shared_cache.client_for(DEFAULT_CACHE_ALIAS)
        if client is None:
            cache.set(key, value, timeout)
        elif timeout is not None and timeout <= 0:  # as Django: not kept at all
            client.delete(shared_cache.key_for(DEFAULT_CACHE_ALIAS, key))
        else:
            client.set(
                shared_cache.key_for(DEFAULT_CACHE_ALIAS, key),
                pickle.dumps(value, pickle.HIGHEST_PROTOCOL),
                px=None if timeout is None else max(1, int(timeout * 1000)),
            )
    except CACHE_ERRORS as exc:
        logger.warning("cache write of %s failed: %s", key, exc)
        return False
    return True


def delete(*keys: str) -> None:
    """Drop ``keys``; raises the cache's errors (the fan-out degrades them)."""
    client = shared_cache.client_for(DEFAULT_CACHE_ALIAS)
    if client is None:
        cache.delete_many(list(keys))
    elif keys:
        client.delete(*(shared_cache.key_for(DEFAULT_CACHE_ALIAS, key) for key in keys))


def delete_quietly(*keys: str) -> None:
    try:
        delete(*keys)
    except CACHE_ERRORS as exc:
        logger.warning("cache delete of %s failed: %s", keys, exc)
