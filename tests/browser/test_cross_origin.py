"""A frontend on another origin, in headless Chromium (issue 15, item 3).

A page served from its own origin (a second local HTTP server) calls the API on the live test
server with ``fetch``: it registers a user, writes a post by that user with an ``Idempotency-Key``,
and reads the post back sending the pin header it got, then once more without it. It reports what
browser code could read of the answers. Only headers listed in ``Access-Control-Expose-Headers``
are visible to such code, so this proves the CORS configuration, not just the server's answers.

Run in the stand-in replica pass (``scripts/test``): users_db's replicas are separate databases
that never see the user the page writes, so the post's embedded author is there only when the read
went to the primary: with the pin header, read-your-writes holds across origins; without it (and
without the cookie, which a cross-origin API does not get back) the author is null.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest
from django.conf import settings
from django.test import override_settings

from tests.browser.frontend import run_page, serve_page
from tests.conftest import standin_replicas
from tests.factories import make_account

REPLICAS = standin_replicas()
CHROMIUM = os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.standin_replica,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture
def frontend_origin():
    with serve_page() as origin:
        yield origin


def test_a_page_on_another_origin_writes_a_post_and_reads_it_back(live_server, frontend_origin) -> None:
    assert REPLICAS, "this test runs in the stand-in replica pass"
    api = live_server.url
    assert api.split("://")[1].split(":")[1] != frontend_origin.rsplit(":", 1)[1]  # another origin
    _, token = make_account(staff=True)
    with override_settings(CORS_ALLOWED_ORIGINS=[frontend_origin]):
        result = run_page(CHROMIUM, frontend_origin, api, token.key, settings.REPLICA_PIN_HEADER)
    print(json.dumps(result, indent=1))  # shown with -s / on failure
    assert result["origin"] == frontend_origin

    registered, created, replay = result["registered"], result["created"], result["replay"]
    assert registered["status"] == 201
    assert registered["location"] == f"/api/v1/users/{registered['body']['user']['id']}/"
    assert registered["pin"] and "users_db" in registered["pin"]  # readable by page code

    assert created["status"] == 201, created
    assert created["location"] == f"/api/v1/posts/{created['body']['id']}/"
    assert created["etag"] and created["requestId"] and "default" in created["serverTiming"]
    assert created["replayed"] is None
    assert replay["status"] == 201 and replay["replayed"] == "true" and replay["body"]["id"] == created["body"]["id"]
    assert replay["location"] == created["location"]

    pinned, plain = result["pinnedRead"], result["plainRead"]
    assert pinned["status"] == 200 and pinned["etag"]
    # Read-your-writes across origins: with the pin the author comes from the primary...
    assert pinned["body"]["author"] == {
        "id": registered["body"]["user"]["id"],
        "username": registered["body"]["user"]["username"],
    }
    # ... without it from a replica that has not seen the new user.
    assert plain["status"] == 200 and plain["body"]["author"] is None

    patched = result["patched"]
    assert patched["status"] == 200 and patched["body"]["title"] == "Changed from another origin"
    assert patched["etag"] and patched["etag"] != pinned["etag"]
