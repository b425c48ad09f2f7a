"""CPU per request in process, from one thread or several (issue 12): ``bench/inprocess.sh``.

Django's WSGI handler called as gunicorn calls it (``gunicorn.socket`` in the environ, so the
access line is gunicorn's, not written here), with the project's settings, against the bench data
(``bench/seed.sh --posts 100000``). ``{id}`` in the path is a random id up to ``--max-id``. 200
warm-ups per thread, then the process CPU (``time.process_time``, every thread) of ``--requests``
requests shared by ``--threads`` threads; the minimum of ``--repeat`` runs.

    bench/inprocess.sh '/api/v1/users/{id}/'                    # one thread
    bench/inprocess.sh '/api/v1/users/{id}/' --threads 4        # four, as a gunicorn worker has
    bench/inprocess.sh /api/v1/posts/ --method POST --max-id 10000 \\
        --body '{"title": "yardstick", "content": "A post of the benchmark.", "author_id": {id}}'

The gap between one thread and four is what the threads of one worker cost each other (they take
turns on one GIL around every database round trip): bench/README.md, session 11.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import threading
import time
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
django.setup()

from django.core.servers.basehttp import get_internal_wsgi_application

parser = argparse.ArgumentParser()
parser.add_argument("path")
parser.add_argument("--requests", type=int, default=2000)
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--repeat", type=int, default=3)
parser.add_argument("--max-id", type=int, default=10000)
parser.add_argument("--method", default="GET")
parser.add_argument("--body", default="")
args = parser.parse_args()
TOKEN = Path(os.environ["SWITCHYARD_VAR_DIR"], "token").read_text().strip()
# The settings' WSGI_APPLICATION (the service's core.wsgi, as gunicorn loads it), or Django's plain
# handler where none is set (the floor, the bare project).
app = get_internal_wsgi_application()
statuses: dict[str, int] = {}


def environ() -> dict:
    ident = str(random.randint(1, args.max_id))
    path, _, query = args.path.replace("{id}", ident).partition("?")
    body = args.body.replace("{id}", ident).encode()
    return {
        "REQUEST_METHOD": args.method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Token {TOKEN}",
        "HTTP_USER_AGENT": "bench",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "gunicorn.socket": None,
    }


def start_response(status: str, headers: list, exc_info: object = None) -> None:
    statuses[status] = statuses.get(status, 0) + 1


def serve(count: int) -> None:
    for _ in range(count):
        response = app(environ(), start_response)
        for _chunk in response:
            pass
        response.close()


def run(count: int) -> float:
    threads = [threading.Thread(target=serve, args=(count // args.threads,)) for _ in range(args.threads)]
    started = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return (time.process_time() - started) / (count // args.threads * args.threads)


run(200 * args.threads)
best = min(run(args.requests) for _ in range(args.repeat))
print(
    f"{args.method} {args.path}: {best * 1e6:.0f} us of CPU per request, {args.threads} thread(s), "
    f"min of {args.repeat} x {args.requests} (answers: {statuses})"
)
