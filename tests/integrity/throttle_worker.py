"""One process of the throttle test: waits for a common start time, then asks the per-token
throttle ``count`` times as fast as it can and prints how many requests it admitted.

    python -m tests.integrity.throttle_worker START_AT COUNT TOKEN
(environment: CACHE_URL naming Redis, API_THROTTLE_RATE, DJANGO_SETTINGS_MODULE=core.settings)
"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace


def main() -> None:
    start_at, count, token = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    import django

    django.setup()
    from api.throttling import TokenRateThrottle

    request = SimpleNamespace(auth=SimpleNamespace(key=token))
    throttles = [TokenRateThrottle() for _ in range(count)]
    while time.time() < start_at:
        time.sleep(0.0005)
    admitted = sum(1 for throttle in throttles if throttle.allow_request(request, None))
    print(admitted, flush=True)


if __name__ == "__main__":
    main()
