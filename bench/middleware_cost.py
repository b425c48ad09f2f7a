"""Each middleware's CPU per request, in process (issue 12): ``bench/middleware_cost.sh [PATH]``.

Django's WSGI handler called as gunicorn calls it (``gunicorn.socket`` in the environ, so the
access line is gunicorn's, not written here), with the project's ``MIDDLEWARE``, then without any,
then without each one in turn; 300 warm-ups, then the minimum of 3 x 3,000 requests of process CPU.
The difference "all minus all-but-one" is that middleware's cost. Default path: ``/health``.
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

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings

PATH = sys.argv[1] if len(sys.argv) > 1 else "/health"
TOKEN = Path(os.environ["SWITCHYARD_VAR_DIR"], "token").read_text().strip()


def environ() -> dict:
    path, _, query = PATH.partition("?")
    return {
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


def cost(middleware: list[str], n: int = 3000) -> float:
    """Microseconds of process CPU per request with this ``MIDDLEWARE``."""
    with override_settings(MIDDLEWARE=middleware):
        app = WSGIHandler()
        for _ in range(300):
            b"".join(app(environ(), lambda status, headers: None))
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            for _ in range(n):
                b"".join(app(environ(), lambda status, headers: None))
            best = min(best, (time.process_time() - started) / n)
    return best * 1e6


def main() -> None:
    full = list(settings.MIDDLEWARE)
    everything, nothing = cost(full), cost([])
    print(
        f"{PATH}: all {len(full)}: {everything:.0f} us, none: {nothing:.0f} us (the stack: {everything - nothing:.0f} us)"
    )
    for name in full:
        print(f"{everything - cost([m for m in full if m != name]):7.1f} us  {name}")


if __name__ == "__main__":
    main()
