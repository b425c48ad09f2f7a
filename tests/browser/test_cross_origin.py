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
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.test import override_settings

from tests.conftest import standin_replicas
from tests.factories import make_account

REPLICAS = standin_replicas()
CHROMIUM = os.environ.get("SWITCHYARD_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.standin_replica,
    pytest.mark.django_db(transaction=True, databases="__all__"),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>frontend</title></head><body><script>
async function run(api, token, pinHeader) {
  const auth = {"Authorization": "Token " + token, "Content-Type": "application/json"};
  const expose = (r) => ({
    status: r.status,
    location: r.headers.get("Location"),
    etag: r.headers.get("ETag"),
    requestId: r.headers.get("X-Request-ID"),
    serverTiming: r.headers.get("Server-Timing"),
    replayed: r.headers.get("Idempotent-Replayed"),
    pin: r.headers.get(pinHeader),
  });
  const suffix = Math.random().toString(36).slice(2, 10);
  const reg = await fetch(api + "/api/v1/registrations/", {method: "POST", headers: auth,
    body: JSON.stringify({username: "front" + suffix, email: "front" + suffix + "@example.com"})});
  const registered = Object.assign(expose(reg), {body: await reg.json()});
  const postBody = JSON.stringify({title: "From another origin", author_id: registered.body.user.id});
  const key = "browser-" + suffix;
  const headers = Object.assign({"Idempotency-Key": key, [pinHeader]: registered.pin || ""}, auth);
  const first = await fetch(api + "/api/v1/posts/", {method: "POST", headers, body: postBody});
  const created = Object.assign(expose(first), {body: await first.json()});
  const second = await fetch(api + "/api/v1/posts/", {method: "POST", headers, body: postBody});
  const replay = Object.assign(expose(second), {body: await second.json()});
  const pin = created.pin || registered.pin;
  const withPin = await fetch(api + created.location, {headers: Object.assign({[pinHeader]: pin}, auth)});
  const pinnedRead = Object.assign(expose(withPin), {body: await withPin.json()});
  const withoutPin = await fetch(api + created.location, {headers: auth});
  const plainRead = Object.assign(expose(withoutPin), {body: await withoutPin.json()});
  const changed = await fetch(api + created.location, {method: "PATCH",
    headers: Object.assign({"If-Match": pinnedRead.etag, [pinHeader]: pin}, auth),
    body: JSON.stringify({title: "Changed from another origin"})});
  const patched = Object.assign(expose(changed), {body: await changed.json()});
  return {origin: location.origin, registered, created, replay, pinnedRead, plainRead, patched};
}
</script></body></html>"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def frontend_origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_page_on_another_origin_writes_a_post_and_reads_it_back(live_server, frontend_origin) -> None:
    from playwright.sync_api import sync_playwright

    assert REPLICAS, "this test runs in the stand-in replica pass"
    api = live_server.url
    assert api.split("://")[1].split(":")[1] != frontend_origin.rsplit(":", 1)[1]  # another origin
    _, token = make_account(staff=True)
    with override_settings(CORS_ALLOWED_ORIGINS=[frontend_origin]), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(frontend_origin + "/")
            result = page.evaluate(
                "([api, token, pin]) => run(api, token, pin)", [api, token.key, settings.REPLICA_PIN_HEADER]
            )
        finally:
            browser.close()
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
