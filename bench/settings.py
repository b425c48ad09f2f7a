"""Settings for the benchmarks: the project's settings plus the bench-only URLconf (bare view).

Nothing here is used in production; ``core.urls`` never routes to the bare view.
"""

from core import settings as _base

globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

ROOT_URLCONF = "bench.urls"
# Keep the benchmark output readable: only warnings and errors.
LOGGING = {**_base.LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}

import os as _os  # noqa: E402

if _os.environ.get("BENCH_NO_HEALTH_CHECKS") == "1":
    for _db in DATABASES.values():  # noqa: F821
        _db["CONN_HEALTH_CHECKS"] = False
