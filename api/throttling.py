"""Per-token throttling.

Each API token has its own budget (``API_THROTTLE_RATE``, e.g. ``1200/min``), counted in the cache
named by ``API_THROTTLE_CACHE`` (Redis when ``CACHE_URL`` is set, so every process shares the
count; a per-process memory cache otherwise). Over the budget: 429 with ``Retry-After``.
The cache key is a hash of the token, never the token itself.
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
