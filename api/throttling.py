"""Per-token throttling.

Each API token has its own budget (``API_THROTTLE_RATE``, ``n/period``, e.g. ``1200/min``), kept
in the cache named by ``API_THROTTLE_CACHE`` (Redis when ``CACHE_URL`` is set, so every process
shares it; a per-process memory cache otherwise). Over the budget: 429 with ``Retry-After``.
The cache key is a hash of the token, never the token itself.

The budget is a generic cell rate (GCRA, a leaky bucket kept as one number per token): a token
may send ``n`` requests at once, and after that one every ``period / n`` seconds, so at most ``n``
in any ``period`` on average. DRF's own throttle keeps the time of every request of the period
and reads and writes that whole list on every request (thousands of entries at high rates);
this keeps one float.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_rate(self) -> str | None:
        # Read at each request (not at import), so the setting can change without a restart of DRF.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    @property
    def cache(self) -> Any:  # type: ignore[override]
        return caches[settings.API_THROTTLE_CACHE]

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
        now = self.timer()
        interval = self.duration / self.num_requests  # one request's share of the period
        tolerance = self.duration - interval  # how far ahead of the steady pace a burst may go
        # The "theoretical arrival time": when the token's budget will be whole again.
        arrival = max(float(self.cache.get(self.key) or 0.0), now)
        if arrival - now > tolerance + 1e-9:  # (float sums of period / n)
            self._wait = arrival - now - tolerance
            return False
        self.cache.set(self.key, arrival + interval, self.duration)
        return True

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
