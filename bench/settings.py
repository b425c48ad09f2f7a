"""Settings for the benchmarks run in process (fanout, overhead, ingest, races): the project's
settings with quieter logs. The throughput yardstick (bench/throughput.sh) serves the service with
its own settings and gunicorn.conf.py, as shipped.
"""

from core import settings as _base

globals().update({name: value for name, value in vars(_base).items() if name.isupper()})

# The in-process benchmarks use Django's test Client, whose requests name the host `testserver`
# (no longer a default host since issue 10).
ALLOWED_HOSTS = [*_base.ALLOWED_HOSTS, "testserver"]

# Keep the benchmark output readable: only warnings and errors.
LOGGING = {**_base.LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}

import os as _os

if _os.environ.get("BENCH_NO_HEALTH_CHECKS") == "1":
    for _db in DATABASES.values():  # noqa: F821
        _db["CONN_HEALTH_CHECKS"] = False
