"""The JSON parser's CPU per body, in process: ``bench/json_parser.sh``.

``api.parsers.JSONParser.parse`` over typical bodies (a post, an event with a small ``data``, a
registration, a 10,000-event batch) and a body at the depth limit, each the minimum, median and
maximum of 15 rounds of ``timeit`` in process CPU time (the machine is shared: the minimum is the
figure to compare), in microseconds per parse. Run it in two checkouts (e.g.
``git worktree add /tmp/before <commit>`` and ``cd /tmp/before && bench/json_parser.sh``,
copying this script there when it is missing) to compare parsers.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import time
import timeit

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
django.setup()

from rest_framework.views import APIView

from api.parsers import JSONParser

EVENT = {
    "event_type": "page_view",
    "user_id": 12345,
    "session_id": "sess-42",
    "timestamp": "2026-11-25T10:00:00Z",
    "data": {"path": "/pricing", "ref": {"source": "ad", "tags": ["a", "b"]}},
}
BODIES = {
    "post": {"title": "Hello", "content": "My first post.", "author_id": 1},
    "event": EVENT,
    "registration": {
        "username": "ada",
        "email": "ada@example.com",
        "first_name": "Ada",
        "profile": {"bio": "Mathematician", "avatar_url": "https://example.com/ada.png"},
    },
    "batch of 10,000": {"events": [EVENT] * 10_000},
    "31 levels in data": {"event_type": "v", "data": json.loads('{"a":' * 30 + "{}" + "}" * 30)},
}


def main() -> None:
    parser = JSONParser()
    context = {"view": APIView(), "encoding": "utf-8"}
    for name, value in BODIES.items():
        raw = json.dumps(value).encode()
        number = 20_000 if len(raw) < 1000 else 20

        def parse(raw: bytes = raw) -> object:
            return parser.parse(io.BytesIO(raw), "application/json", context)

        rounds = [t / number * 1e6 for t in timeit.repeat(parse, number=number, repeat=15, timer=time.process_time)]
        print(
            f"{name:>20} {len(raw):>9} B  min {min(rounds):10.2f} us"
            f"  (median {statistics.median(rounds):.2f}, max {max(rounds):.2f})"
        )


if __name__ == "__main__":
    main()
