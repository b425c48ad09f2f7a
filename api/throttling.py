"""Per-token throttling.

Each API token has its own budget (``API_THROTTLE_RATE``, ``n/period``, e.g. ``1200/min``), kept
in the cache named by ``API_THROTTLE_CACHE`` (Redis when ``CACHE_URL`` is set, so every process
shares it), or, when that setting is empty (the default without ``CACHE_URL``), in this process's
memory: a dictionary of at most :data:`LOCAL_ENTRIES` tokens, the least recently seen dropped
first. (It was Django's local-memory cache: its key check walks every character of the key in
Python and it pickles the number; a check, ``TokenRateThrottle().allow_request`` in a loop of
20,000, cost 24-28 us of CPU through it and 4-5 us on the dictionary, on the 2-core machine of
the benchmarks, issue 12; and it dropped a third of its 300 entries when full.) Over the budget: 429
with ``Retry-After``. The key is a hash of the token, never the token itself.

The budget is a generic cell rate (GCRA, a leaky bucket kept as one number per token): a token
may send ``n`` requests at once, and after that one every ``period / n`` seconds, so at most ``n``
in any ``period`` on average. DRF's own throttle keeps the time of every request of the period
and reads and writes that whole list on every request (thousands of entries at high rates);
this keeps one float.

The check-and-update is one atomic operation. With a Redis cache (``CACHE_URL``; Django's
``RedisCache`` or django-redis) it is a Lua script run by Redis (``EVAL``/``EVALSHA`` through
redis-py's public ``register_script``, on the kept client of :mod:`core.shared_cache`): read the token's time, compare, write it back, on Redis's
own clock (``TIME``; Redis 5 or later, which replicates a script's effects), so N processes, on one host or many, admit no more than the budget. With a
per-process store the same arithmetic runs under a process-wide lock. If Redis cannot be reached
the request is admitted (a throttle protects the service; it must not take it down) and a warning
is logged.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from collections import OrderedDict
from typing import Any

import redis
from django.conf import settings
from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from core import shared_cache

log = logging.getLogger("switchyard.throttle")

#: KEYS[1]: the token's key. ARGV: interval, tolerance (seconds), expiry (ms). Returns "" when the
#: request is admitted, else the seconds to wait (a string: Lua numbers come back as integers).
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local arrival = tonumber(redis.call('GET', KEYS[1]) or '0')
if arrival < now then arrival = now end
if arrival - now > tolerance + 1e-9 then
  return tostring(arrival - now - tolerance)
end
redis.call('SET', KEYS[1], string.format('%.6f', arrival + interval), 'PX', ARGV[3])
return ''
"""

_local_lock = threading.Lock()
#: The per-process budgets (``API_THROTTLE_CACHE`` empty): key -> the token's theoretical arrival time.
_local: OrderedDict[str, float] = OrderedDict()
LOCAL_ENTRIES = 10_000


def forget_local() -> None:
    """Every per-process budget whole again (tests)."""
    with _local_lock:
        _local.clear()


@functools.cache
def _script(url: str, pid: int) -> Any:
    return shared_cache.client(url).register_script(GCRA_SCRIPT)


def gcra_script(url: str) -> Any:
    """The registered script on this process's kept client of ``url`` (core.shared_cache)."""
    return _script(url, os.getpid())


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_rate(self) -> str | None:
        # Read at each request (not at import), so the setting can change without a restart of DRF.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = getattr(request.auth, "key", None)
        if not token:
            return None  # unauthenticated requests are refused (401) before throttling
        ident = hashlib.sha256(token.encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        interval = self.duration / self.num_requests  # one request's share of the period
        tolerance = self.duration - interval  # how far ahead of the steady pace a burst may go
        alias = settings.API_THROTTLE_CACHE
        url = shared_cache.redis_location(alias) if alias else None
        if url is not None:
            return self._allow_shared(url, interval, tolerance)
        return self._allow_in_process(caches[alias] if alias else None, interval, tolerance)

    def _allow_in_process(self, cache: Any, interval: float, tolerance: float) -> bool:
        """The arithmetic under a process-wide lock (this process's threads take turns), on this
        process's dictionary (``cache`` None) or on another kind of Django cache."""
        key = self.key
        with _local_lock:
            now = self.timer()
            # The "theoretical arrival time": when the token's budget will be whole again.
            arrival = max(float((_local.get(key) if cache is None else cache.get(key)) or 0.0), now)
            refused = arrival - now > tolerance + 1e-9  # (float sums of period / n)
            if refused:
                self._wait = arrival - now - tolerance
            elif cache is not None:
                cache.set(key, arrival + interval, self.duration)
            else:
                _local[key] = arrival + interval
            if cache is None:
                _local.move_to_end(key)  # a refused token is the last one to forget
                if len(_local) > LOCAL_ENTRIES:
                    _local.popitem(last=False)
            return not refused

    def _allow_shared(self, url: str, interval: float, tolerance: float) -> bool:
        key = shared_cache.key_for(settings.API_THROTTLE_CACHE, self.key)
        try:
            answer = gcra_script(url)(keys=[key], args=[repr(interval), repr(tolerance), int(self.duration * 1000)])
        except redis.RedisError as exc:
            log.warning("throttle: Redis unavailable, request admitted: %s", exc)
            return True
        answer = shared_cache.decode(answer)
        if not answer:
            return True
        self._wait = float(answer)
        return False

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
