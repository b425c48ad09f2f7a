#!/usr/bin/env python3
"""CPU time of the authentication and throttle path in process, per request (run by hand):

    bench/auth_path.sh                                   # per-process memory and budgets
    CACHE_URL=redis://127.0.0.1:6379/7 bench/auth_path.sh   # revocation and budgets on Redis
    AUTH_PATH_TREE=/path/to/other/checkout bench/auth_path.sh   # the same, that checkout's code

Three loops of ``--requests`` (20,000), each timed with ``time.process_time`` (this process's
CPU; Redis's own work is not in it), ``--repeat`` (5) times, the median and min-max printed in us
per request:

- ``token``: what DRF runs for a remembered valid token: ``ScopedTokenAuthentication.authenticate``
  then ``TokenRateThrottle.allow_request`` (a DRF ``Request`` made once; the bench token of
  ``bench/common.sh``);
- ``refused``: a remembered refused key through the whole service in process (Django's test
  ``Client``: every middleware, the answer included);
- ``health``: ``GET /health`` the same way, beside it.

The failure budget and the token budget are set out of reach (the path itself is measured).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

tree = os.environ.get("AUTH_PATH_TREE")
if tree:
    sys.path.insert(0, tree)
os.environ.setdefault("API_AUTH_FAILURE_RATE", "1000000000/minute")

import django

django.setup()
logging.disable(logging.WARNING)  # the access lines of the loops

from django.conf import settings
from django.test import Client, RequestFactory
from rest_framework.request import Request

from api import authentication, throttling


def per_request(loop, count: int, repeat: int) -> tuple[float, float, float]:
    loop(200)  # warm: the token remembered, scripts loaded, imports done
    runs = []
    for _ in range(repeat):
        started = time.process_time()
        loop(count)
        runs.append((time.process_time() - started) / count * 1e6)
    return statistics.median(runs), min(runs), max(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    token = Path(os.environ["SWITCHYARD_VAR_DIR"], "token").read_text().strip()
    request = Request(RequestFactory().get("/api/v1/users/", HTTP_AUTHORIZATION=f"Token {token}"))

    def token_loop(count: int) -> None:
        for _ in range(count):
            auth = authentication.ScopedTokenAuthentication()
            user, grant = auth.authenticate(request)
            request.user, request.auth = user, grant
            throttle = throttling.TokenRateThrottle()
            if not throttle.allow_request(request, None):
                raise SystemExit("throttled: raise API_THROTTLE_RATE")

    client = Client()
    refused = {"HTTP_AUTHORIZATION": "Token swy_" + "x" * 40}
    if client.get("/api/v1/users/?page_size=1", **refused).status_code != 401:
        raise SystemExit("the refused key was not refused")

    def refused_loop(count: int) -> None:
        for _ in range(count):
            client.get("/api/v1/users/?page_size=1", **refused)

    def health_loop(count: int) -> None:
        for _ in range(count):
            client.get("/health")

    cache = settings.API_TOKEN_REVOCATION_CACHE and settings.CACHES[settings.API_TOKEN_REVOCATION_CACHE]["BACKEND"]
    print(
        f"code: {tree or 'this checkout'}; revocation cache: {cache or 'none'}; throttle cache: "
        f"{settings.API_THROTTLE_CACHE or 'per process'}"
    )
    for name, loop, count in (
        ("token", token_loop, args.requests),
        ("refused", refused_loop, args.requests // 4),
        ("health", health_loop, args.requests // 4),
    ):
        median, low, high = per_request(loop, count, args.repeat)
        print(f"{name:8} {median:7.1f} us/request CPU (min {low:.1f}, max {high:.1f})")


if __name__ == "__main__":
    main()
