"""The cost of authenticating one request with a remembered token, with and without the shared
revocation check (issue 10). Run twice and compare:

    SWITCHYARD_VAR_DIR=var/bench-auth python bench/token_auth.py                      # per process
    CACHE_URL=redis://127.0.0.1:6379/10 SWITCHYARD_VAR_DIR=var/bench-auth python bench/token_auth.py

Prints the median and spread (p10-p90) of 7 rounds of 5,000 calls of
``ScopedTokenAuthentication.authenticate_credentials`` (hash, memory, shared generation, expiry and
last-use checks), in microseconds per call. Uses the embedded SQLite default unless URLs are set.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings
from django.core.management import call_command

from api.authentication import ScopedTokenAuthentication
from core.tokens.services import token_create

ROUNDS, CALLS = 7, 5000


def main() -> None:
    call_command("migrate_all", "--database", "default", verbosity=0)
    key = token_create(username="bench-auth", scopes=("read",)).key
    auth = ScopedTokenAuthentication()
    auth.authenticate_credentials(key)  # looked up once, then remembered
    per_call = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            auth.authenticate_credentials(key)
        per_call.append((time.perf_counter() - started) / CALLS * 1e6)
    per_call.sort()
    shared = settings.API_TOKEN_REVOCATION_CACHE or "none"
    print(
        f"shared revocation cache: {shared}; per call: median {statistics.median(per_call):.1f} us, "
        f"p10-p90 {per_call[0]:.1f}-{per_call[-1]:.1f} us ({ROUNDS} rounds of {CALLS})"
    )


if __name__ == "__main__":
    main()
