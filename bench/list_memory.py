"""Largest list answers and worker memory (run by bench/list_memory.sh, which sets up the databases).

Serves the service as shipped (``gunicorn -c gunicorn.conf.py``, its own settings; WEB_CONCURRENCY
workers, 2 by default, GUNICORN_THREADS threads) on the bench prefix's own PostgreSQL databases,
writes maximal posts through the API (title and content at their bounds in U+0001, which JSON
writes as six bytes: the heaviest posts there are), then asks for the largest page of the posts list
(``?page_size=`` its maximum) 1,000 times from a few client threads, and reports each worker's
resident memory (VmRSS) at the start (workers booted, one request each), after a warm-up and at the
end, with the answers' sizes and times. Target: every worker ends within 64 MB of its start.

    bench/list_memory.sh                      # 2 workers, 100 maximal posts, 1,000 requests
    LIST_MEMORY_REQUESTS=300 bench/list_memory.sh
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
PORT = int(os.environ.get("LIST_MEMORY_PORT", "18610"))
POSTS = int(os.environ.get("LIST_MEMORY_POSTS", "100"))
REQUESTS = int(os.environ.get("LIST_MEMORY_REQUESTS", "1000"))
WARMUP = int(os.environ.get("LIST_MEMORY_WARMUP", "50"))
CLIENTS = int(os.environ.get("LIST_MEMORY_CLIENTS", "4"))
W = "\x01"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def request(method: str, path: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def fill(token: str, author_id: int, settings: object) -> None:
    title, content = W * settings.POST_TITLE_MAX_CHARS, W * settings.POST_CONTENT_MAX_CHARS  # type: ignore[attr-defined]
    body = json.dumps({"title": title, "content": content, "author_id": author_id}).encode()
    for _ in range(POSTS):
        status, answer = request("POST", "/api/v1/posts/", token, body)
        assert status == 201, (status, answer[:300])
    over = json.dumps({"title": "t", "content": content + "x", "author_id": author_id}).encode()
    status, answer = request("POST", "/api/v1/posts/", token, over)
    assert status == 400 and json.loads(answer)["errors"][0]["code"] == "max_length", answer[:300]
    print(f"wrote {POSTS} maximal posts through the API ({len(body):,} bytes each); one more character: 400")


def hammer(token: str, count: int, page_size: int, pages: int) -> tuple[list[float], list[int]]:
    times: list[float] = []
    sizes: list[int] = []
    lock = threading.Lock()
    todo = iter(range(count))

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        headers = {"Authorization": f"Token {token}"}
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            start = time.perf_counter()
            connection.request("GET", f"/api/v1/posts/?page_size={page_size}&page={1 + i % pages}", headers=headers)
            response = connection.getresponse()
            data = response.read()
            took = time.perf_counter() - start
            assert response.status == 200, (response.status, data[:300])
            with lock:
                times.append(took)
                sizes.append(len(data))
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, sizes


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.conf import settings

    from api import limits
    from core.blog.models import Post
    from core.tokens.services import token_create
    from core.users.services import user_create, user_delete

    Post.objects.all().delete()
    name = f"list-memory-{os.getpid()}-"
    author = user_create(
        username=name.ljust(settings.USER_USERNAME_MAX_CHARS, "u"),
        email=f"{name}@example.com",
        first_name="",
        last_name="",
    )
    token = token_create(username=f"list-memory-{os.getpid()}", scopes=("read", "posts:write")).key
    row, page_size, stated = limits.figures("posts")

    env = {**os.environ, "BIND": f"127.0.0.1:{PORT}", "DJANGO_SETTINGS_MODULE": "core.settings", "LOG_LEVEL": "WARNING"}
    env.setdefault("WEB_CONCURRENCY", "2")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                if request("GET", "/health", token)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        pids = workers(server.pid)
        print(f"gunicorn -c gunicorn.conf.py: {len(pids)} workers x {env.get('GUNICORN_THREADS', '4')} threads")
        fill(token, author.pk, settings)
        for _ in range(4 * len(pids)):  # each worker answers a small request: Django loaded
            request("GET", "/api/v1/posts/?page_size=1", token)
        start = {pid: rss_mb(pid) for pid in pids}
        hammer(token, WARMUP, page_size, max(1, POSTS // page_size))
        warm = {pid: rss_mb(pid) for pid in pids}
        began = time.perf_counter()
        times, sizes = hammer(token, REQUESTS, page_size, max(1, POSTS // page_size))
        elapsed = time.perf_counter() - began
        end = {pid: rss_mb(pid) for pid in pids}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        user_delete(user_id=author.pk)  # and their posts

    print(f"largest page: page_size={page_size}; stated largest answer {stated:,} bytes (row {row:,})")
    print(
        f"{len(times)} requests from {CLIENTS} clients in {elapsed:.1f} s; answer {min(sizes):,}-{max(sizes):,} bytes; "
        f"time median {statistics.median(times) * 1000:.0f} ms, p90 {sorted(times)[int(len(times) * 0.9)] * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms"
    )
    assert max(sizes) <= stated
    print("worker  RSS start  after warm-up  end (MB)  end-start")
    worst = 0.0
    for pid in pids:
        grew = end[pid] - start[pid]
        worst = max(worst, grew)
        print(f"{pid:>6}  {start[pid]:9.1f}  {warm[pid]:13.1f}  {end[pid]:8.1f}  {grew:+9.1f}")
    print(f"largest growth {worst:.1f} MB: {'within' if worst <= 64 else 'OVER'} the 64 MB target")


if __name__ == "__main__":
    main()
