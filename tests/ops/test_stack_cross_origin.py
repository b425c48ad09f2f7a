"""The cross-origin frontend (tests/browser/frontend.py) in headless Chromium against a running
stack, through nginx: what ``.ci/stack-drills.sh`` runs after ``scripts/stack up``.

Marked ``stack`` (deselected unless ``-m stack``). Reads ``STACK_API_URL`` (the stack's nginx),
``STACK_API_TOKEN`` (a staff token) and ``STACK_FRONTEND_PORT``: the page is served on
``http://127.0.0.1:STACK_FRONTEND_PORT``, the origin the stack was brought up with in
``CORS_ALLOWED_ORIGINS``. Unlike the live-server test, users_db's replica here is a real streaming
replica: a read without the pin may already see the new user, so only the pinned read's author is
certain (read-your-writes across origins); the plain read answers 200 either way.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from django.conf import settings

from tests.browser.frontend import run_page, serve_page

CHROMIUM = os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium")
API = os.environ.get("STACK_API_URL", "")

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(not API, reason="STACK_API_URL, STACK_API_TOKEN, STACK_FRONTEND_PORT name a running stack"),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


def test_a_page_on_another_origin_writes_through_nginx_and_reads_its_write_back() -> None:
    with serve_page(int(os.environ["STACK_FRONTEND_PORT"])) as origin:
        result = run_page(CHROMIUM, origin, API, os.environ["STACK_API_TOKEN"], settings.REPLICA_PIN_HEADER)
    print(json.dumps(result, indent=1))  # shown with -s / on failure
    assert result["origin"] == origin != API

    registered, created, replay = result["registered"], result["created"], result["replay"]
    assert registered["status"] == 201, registered
    assert registered["pin"] and "users_db" in registered["pin"]  # an exposed header
    assert created["status"] == 201, created
    assert created["etag"] and created["requestId"] and "default" in created["serverTiming"]
    assert replay["status"] == 201 and replay["replayed"] == "true" and replay["body"]["id"] == created["body"]["id"]

    user = {"id": registered["body"]["user"]["id"], "username": registered["body"]["user"]["username"]}
    pinned, plain = result["pinnedRead"], result["plainRead"]
    assert pinned["status"] == 200 and pinned["body"]["author"] == user
    assert plain["status"] == 200 and plain["body"]["author"] in (None, user)

    patched = result["patched"]
    assert patched["status"] == 200 and patched["body"]["title"] == "Changed from another origin"
    assert patched["etag"] and patched["etag"] != pinned["etag"]
