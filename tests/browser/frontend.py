"""The frontend page of the cross-origin tests: served from an origin of its own, it calls the API
with ``fetch`` (register a user, write a post with an ``Idempotency-Key`` and replay it, read it
back with and without the pin header, change it with ``If-Match``) and reports what browser code
could read of each answer. Used by tests/browser/test_cross_origin.py (the live test server) and
tests/ops/test_stack_cross_origin.py (the stack, through nginx)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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


@contextmanager
def serve_page(port: int = 0) -> Iterator[str]:
    """The page on 127.0.0.1:``port`` (a free one by default); yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_page(chromium: str, origin: str, api: str, token: str, pin_header: str) -> dict:
    """Open the page in headless Chromium and run it against ``api``; what the page read."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(origin + "/")
            return page.evaluate("([api, token, pin]) => run(api, token, pin)", [api, token, pin_header])
        finally:
            browser.close()
