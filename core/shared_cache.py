"""The Redis of ``CACHE_URL`` on the paths every request takes: one kept redis-py client per URL.

Django's ``RedisCache`` makes a new ``redis.Redis`` client for every operation (a copy of
redis-py's table of response callbacks each time) and pickles every value: in process on the
2-core machine of the benchmarks a GET through it cost 150 us of CPU, through a kept client 52 us
(issue 12). Three things talk to that Redis on every request or every cached answer, and use
:func:`client` instead: the throttle's scripts (``api.throttling``; the one a request sends for
its token revocation generation and its budget together), the token revocation generation
(``api.authentication``) and the aggregates' cache (``core.services.cached``). A
redis-py client is thread-safe (each command takes a connection from the client's pool); one is
made per URL and process (a forked worker makes its own).

:func:`redis_location` tells whether a Django cache alias is a Redis one, and where.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import redis
from django.conf import settings

#: Seconds a command (and connecting) may take before it counts as the cache being unavailable.
TIMEOUT_SECONDS = 1.0


def redis_location(alias: str) -> str | None:
    """The Redis URL of cache ``alias`` when it is a Redis cache, else None."""
    config = settings.CACHES.get(alias, {})
    if "redis" not in str(config.get("BACKEND", "")).lower():
        return None
    location = config.get("LOCATION")
    if isinstance(location, (list, tuple)):
        location = location[0] if location else None
    elif isinstance(location, str) and "," in location:
        location = location.split(",")[0]  # the first server is the writer (Django's RedisCache)
    return location or None


@functools.cache
def _client(url: str, pid: int) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)


def client(url: str) -> redis.Redis:
    """The kept client of ``url`` in this process."""
    return _client(url, os.getpid())


def client_for(alias: str) -> redis.Redis | None:
    """The kept client of cache ``alias`` when it is a Redis cache, else None."""
    url = redis_location(alias)
    return client(url) if url else None


def key_for(alias: str, key: str) -> str:
    """``key`` under the cache's ``KEY_PREFIX`` (if any), so that instances sharing a Redis with
    different prefixes keep apart, as Django's cache keeps them."""
    prefix = settings.CACHES.get(alias, {}).get("KEY_PREFIX", "")
    return f"{prefix}:{key}" if prefix else key


def decode(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value
