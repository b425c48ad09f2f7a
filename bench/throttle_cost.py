"""The CPU cost of one per-token throttle decision, in microseconds of this process's CPU time
(``time.process_time``: on Redis the wait for its answer is not counted), run by hand:

    python bench/throttle_cost.py                                   # per-process budgets
    CACHE_URL=redis://127.0.0.1:6379/3 python bench/throttle_cost.py  # the Lua script on Redis

``TokenRateThrottle().allow_request`` for one token with a budget that never runs out, timed with
``timeit`` (7 repeats of 20,000 calls; 2,000 on Redis): the median and the spread (min-max) of the repeats. Where
the code has them (``api.throttling.rate_limit_headers``), the loop also builds the
``RateLimit-Policy`` and ``RateLimit`` values from what the decision left, as the request
middleware does; ``BENCH_TREE=<checkout>`` times the code of another checkout (an earlier commit).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import timeit
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, os.environ.get("BENCH_TREE") or str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("API_THROTTLE_RATE", "1000000000/second")

import django

django.setup()

from django.conf import settings

from api import throttling

REPEATS = 7


def main() -> None:
    request = SimpleNamespace(auth=SimpleNamespace(key="bench-throttle-token"))
    headers = hasattr(throttling, "rate_limit_headers")

    def once() -> None:
        throttling.TokenRateThrottle().allow_request(request, None)
        if headers:
            quota = throttling.counted.get()
            if quota is not None:
                throttling.rate_limit_headers(quota)

    once()
    calls = 2_000 if settings.API_THROTTLE_CACHE else 20_000  # a Redis round trip each: fewer
    runs = sorted(t / calls * 1e6 for t in timeit.repeat(once, number=calls, repeat=REPEATS, timer=time.process_time))
    store = settings.API_THROTTLE_CACHE or "in-process"
    print(
        f"throttle store: {store}; headers: {'yes' if headers else 'no'}; per call: median "
        f"{statistics.median(runs):.2f} us, min-max {runs[0]:.2f}-{runs[-1]:.2f} us ({REPEATS} x {calls})"
    )


if __name__ == "__main__":
    main()
