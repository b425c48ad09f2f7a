"""What gzip costs the service and saves on the wire, in process: ``bench/compression.sh [PATH]``.

Django's WSGI handler with the project's ``MIDDLEWARE`` (``api.middleware.CompressionMiddleware``
included), called as gunicorn calls it, for ``PATH`` (default: a page of 50 users) without and
with ``Accept-Encoding: gzip``: the bytes of the body, and microseconds of process CPU per request
(300 warm-ups, then the minimum and maximum of 5 x 500 requests). Behind nginx the service is asked
without ``Accept-Encoding`` and nginx compresses (docs/operations.md, "Proxy").
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django.setup()

from django.core.handlers.wsgi import WSGIHandler

PATH = sys.argv[1] if len(sys.argv) > 1 else "/api/v1/users/?page_size=50"
TOKEN = Path(os.environ["SWITCHYARD_VAR_DIR"], "token").read_text().strip()


def environ(accept: str) -> dict:
    path, _, query = PATH.partition("?")
    env = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "gunicorn.socket": None,
        "HTTP_AUTHORIZATION": f"Token {TOKEN}",
        "REMOTE_ADDR": "127.0.0.1",
    }
    if accept:
        env["HTTP_ACCEPT_ENCODING"] = accept
    return env


def run(app: WSGIHandler, accept: str, n: int = 500) -> tuple[int, float, float]:
    """(bytes of the body, min and max microseconds of process CPU per request over 5 rounds)."""
    seen: list[str] = []
    size = len(b"".join(app(environ(accept), lambda status, headers: seen.append(status))))
    assert seen[0].startswith("200"), seen[0]
    for _ in range(300):
        b"".join(app(environ(accept), lambda status, headers: None))
    rounds = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(n):
            b"".join(app(environ(accept), lambda status, headers: None))
        rounds.append((time.process_time() - started) / n * 1e6)
    return size, min(rounds), max(rounds)


def main() -> None:
    app = WSGIHandler()
    for label, accept in (("identity", ""), ("gzip", "gzip, deflate, br")):
        size, low, high = run(app, accept)
        print(f"{PATH} {label:8}: {size:6d} bytes, {low:6.0f} us CPU per request (max of rounds {high:.0f})")


if __name__ == "__main__":
    main()
