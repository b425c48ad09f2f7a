"""Race drill: concurrent clients racing each other across databases (issue 11).

Two gunicorn instances on loopback serve the real engines (PostgreSQL default/users_db/
analytics_db, MariaDB legacy_db, SQLite cache_db) and share one Redis (``CACHE_URL``), with
``USER_DELETION_ANALYTICS=delete``. Client threads, split across the two instances, run:

1. ``orphans``: per round a user U; writer threads loop ``POST /posts/`` (and ``POST /events/``)
   naming U for 1.2 s; 0.3 s in, ``DELETE /users/U/``. Afterwards ``GET /posts/?author_id=U``
   must be empty, and at the end ``manage.py check_references`` must find 0 orphans;
2. ``deletes``: 20 clients ``DELETE /users/U/`` at once: exactly one 204, the others 404;
3. ``if_match``: clients loop GET a post, then ``PATCH`` its counter + 1 with ``If-Match``; a 412
   re-reads. Every 200 must have written the successor of the version it named: the final counter
   equals the number of 200s and the written values are 1..n without a gap or repeat (0 lost updates);
4. ``idempotency``: 16 clients send one ``Idempotency-Key`` (same body) at once, retrying on 409:
   exactly one post is written and every 201 names it;
5. ``throttle``: a second pair of gunicorn instances with a budget of ``B/hour`` per token; clients
   on both send one burst with one token: admitted (200) == B, the rest 429.

Every answer is counted; any 5xx, any unexpected status or any failed check exits 1.
``--short`` (CI) runs fewer rounds. Figures are printed as one line per check.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PORTS = [int(p) for p in os.environ.get("RACES_PORTS", "18201,18202,18203,18204").split(",")]
REDIS_URL = os.environ.get("RACES_REDIS_URL", "redis://127.0.0.1:6379/11")
PREFIX = os.environ.get("RACES_DB_PREFIX", "sy_races")


def log(message: str) -> None:
    print(f"[races {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(*cmd: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result


def fresh_databases(prefix: str) -> None:
    for name in (prefix, f"{prefix}_users", f"{prefix}_analytics"):
        run("psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        run("psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f'CREATE DATABASE "{name}"')
    run(
        "mysql",
        "-h",
        "127.0.0.1",
        "-u",
        "root",
        "-e",
        f"DROP DATABASE IF EXISTS `{prefix}_legacy`; "
        f"CREATE DATABASE `{prefix}_legacy` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    )


def app_env(prefix: str, var_dir: Path, key_prefix: str) -> dict[str, str]:
    pg = "postgres://postgres@127.0.0.1:5432"
    env = {k: v for k, v in os.environ.items() if not k.endswith(("DATABASE_URL", "_REPLICA_URLS", "_TABLESPACE"))}
    env.update(
        {
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
            "DATABASE_URL": f"{pg}/{prefix}",
            "USERS_DATABASE_URL": f"{pg}/{prefix}_users",
            "ANALYTICS_DATABASE_URL": f"{pg}/{prefix}_analytics",
            "LEGACY_DATABASE_URL": f"mysql://root@127.0.0.1:3306/{prefix}_legacy",
            "SWITCHYARD_VAR_DIR": str(var_dir),
            "CACHE_URL": REDIS_URL,
            "CACHE_KEY_PREFIX": key_prefix,
            "USER_DELETION_ANALYTICS": "delete",
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
            "GUNICORN_THREADS": os.environ.get("GUNICORN_THREADS", "4"),
            "LOG_LEVEL": "WARNING",
            "API_THROTTLE_RATE": "1000000/minute",
            "API_TOKEN_CACHE_SECONDS": "5",
            "DJANGO_SETTINGS_MODULE": "core.settings",
        }
    )
    return env


def manage(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(sys.executable, str(ROOT / "manage.py"), *args, env=env, check=check)


def http(
    method: str,
    url: str,
    body: Any = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, answer_headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, answer_headers = exc.read(), exc.code, dict(exc.headers)
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc), {}
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")[:200]
    return status, payload, answer_headers


class Servers:
    def __init__(self, env: dict[str, str], ports: list[int], var_dir: Path) -> None:
        self.env, self.ports, self.var_dir, self.procs = env, ports, var_dir, []
        self.logs: list[Any] = []

    def __enter__(self) -> Servers:
        for port in self.ports:
            env = {**self.env, "BIND": f"127.0.0.1:{port}"}
            out = (self.var_dir / f"gunicorn-{port}.log").open("w")
            self.logs.append(out)
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        for port in self.ports:
            deadline = time.time() + 60
            while http("GET", f"http://127.0.0.1:{port}/health/ready")[0] != 200:
                if time.time() > deadline:
                    raise SystemExit(f"gunicorn on {port} not ready; see {self.var_dir}/gunicorn-{port}.log")
                time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for out in self.logs:
            out.close()

    def base(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[n % len(self.ports)]}"


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []

    def count(self, op: str, status: int) -> None:
        with self.lock:
            self.statuses[(op, status)] += 1

    def fail(self, message: str) -> None:
        with self.lock:
            self.failures.append(message)
        log(f"FAIL: {message}")

    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500 or status == 0)


def in_threads(n: int, fn: Any) -> list[Any]:
    results: list[Any] = [None] * n
    barrier = threading.Barrier(n)

    def body(i: int) -> None:
        barrier.wait(30)
        results[i] = fn(i)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def new_user(servers: Servers, token: str, tally: Tally) -> int:
    name = f"r{uuid.uuid4().hex[:12]}"
    status, body, _ = http(
        "POST", f"{servers.base(0)}/api/v1/users/", {"username": name, "email": f"{name}@example.com"}, token
    )
    tally.count("create_user", status)
    if status != 201:
        raise SystemExit(f"could not create a user: {status} {body}")
    return body["id"]


# --- phases ---------------------------------------------------------------------------------------
def phase_orphans(servers: Servers, token: str, tally: Tally, rounds: int, writers: int) -> dict[str, int]:
    figures: Counter[str] = Counter()
    for _ in range(rounds):
        user_id = new_user(servers, token, tally)
        stop_at = time.time() + 1.2

        def writer(i: int) -> None:
            while time.time() < stop_at:
                if i % 3 == 2:
                    status, body, _ = http(
                        "POST",
                        f"{servers.base(i)}/api/v1/analytics/events/",
                        {"event_type": "race", "user_id": user_id},
                        token,
                    )
                    op = "create_event"
                else:
                    status, body, _ = http(
                        "POST", f"{servers.base(i)}/api/v1/posts/", {"author_id": user_id, "title": "racing"}, token
                    )
                    op = "create_post"
                tally.count(op, status)
                if status == 201:
                    figures[f"{op}_201"] += 1
                elif status == 400 and any(
                    e.get("field") in ("author_id", "user_id") for e in (body or {}).get("errors", [])
                ):
                    figures[f"{op}_400"] += 1
                else:
                    tally.fail(f"{op} for a user being deleted answered {status}: {str(body)[:200]}")

        def deleter() -> None:
            time.sleep(0.3)
            status, body, _ = http("DELETE", f"{servers.base(1)}/api/v1/users/{user_id}/", token=token)
            tally.count("delete_user", status)
            if status != 204:
                tally.fail(f"DELETE /users/{user_id}/ answered {status}: {str(body)[:200]}")

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)] + [
            threading.Thread(target=deleter)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        status, body, _ = http("GET", f"{servers.base(0)}/api/v1/posts/?author_id={user_id}", token=token)
        tally.count("list_posts", status)
        left = (body or {}).get("count", -1) if status == 200 else -1
        figures["posts_left_after_delete"] += max(left, 0)
        if left != 0:
            tally.fail(f"user {user_id}: {left} posts left after the deletion")
    return dict(figures)


def phase_deletes(servers: Servers, token: str, tally: Tally, rounds: int, clients: int) -> dict[str, int]:
    figures: Counter[str] = Counter()
    for _ in range(rounds):
        user_id = new_user(servers, token, tally)
        for _ in range(3):
            status, _, _ = http("POST", f"{servers.base(0)}/api/v1/posts/", {"author_id": user_id, "title": "x"}, token)
            tally.count("create_post", status)
        answers = in_threads(
            clients, lambda i: http("DELETE", f"{servers.base(i)}/api/v1/users/{user_id}/", token=token)[0]
        )
        for status in answers:
            tally.count("delete_user", status)
        counts = Counter(answers)
        figures["204"] += counts[204]
        figures["404"] += counts[404]
        if counts[204] != 1 or counts[404] != clients - 1:
            tally.fail(f"{clients} concurrent deletes of user {user_id}: {dict(counts)} (want one 204, the rest 404)")
    return dict(figures)


def phase_if_match(servers: Servers, token: str, tally: Tally, seconds: float, clients: int) -> dict[str, int]:
    author = new_user(servers, token, tally)
    status, body, _ = http(
        "POST", f"{servers.base(0)}/api/v1/posts/", {"author_id": author, "title": "counter", "content": "0"}, token
    )
    tally.count("create_post", status)
    url = f"/api/v1/posts/{body['id']}/"
    written: list[int] = []
    figures: Counter[str] = Counter()
    stop_at = time.time() + seconds

    def client(i: int) -> None:
        base = servers.base(i)
        while time.time() < stop_at:
            status, body, headers = http("GET", base + url, token=token)
            tally.count("read_post", status)
            if status != 200:
                tally.fail(f"GET {url}: {status}")
                return
            seen = int(body["content"])
            status, answer, _ = http(
                "PATCH", base + url, {"content": str(seen + 1)}, token, {"If-Match": headers["ETag"]}
            )
            tally.count("patch_if_match", status)
            if status == 200:
                with tally.lock:
                    written.append(seen + 1)
                figures["200"] += 1
            elif status == 412:
                figures["412"] += 1
            else:
                tally.fail(f"PATCH with If-Match: {status} {str(answer)[:200]}")

    in_threads(clients, client)
    status, body, _ = http("GET", servers.base(0) + url, token=token)
    final = int(body["content"])
    lost = len(written) - final
    figures["final_counter"] = final
    figures["lost_updates"] = lost
    if lost != 0 or sorted(written) != list(range(1, final + 1)):
        tally.fail(f"If-Match updates: {len(written)} x 200 but the counter is {final} (lost updates)")
    return dict(figures)


def phase_idempotency(servers: Servers, token: str, tally: Tally, rounds: int, clients: int) -> dict[str, int]:
    figures: Counter[str] = Counter()
    for _ in range(rounds):
        author = new_user(servers, token, tally)
        key = uuid.uuid4().hex
        title = f"idem {key[:8]}"

        def client(i: int) -> Any:
            for _ in range(200):
                status, body, _headers = http(
                    "POST",
                    f"{servers.base(i)}/api/v1/posts/",
                    {"author_id": author, "title": title},
                    token,
                    {"Idempotency-Key": key},
                )
                tally.count("create_post_idempotent", status)
                if status == 409:
                    figures["409_in_progress"] += 1
                    time.sleep(0.05)
                    continue
                return status, (body or {}).get("id")
            return 0, None

        answers = in_threads(clients, client)
        ids = {pid for status, pid in answers if status == 201}
        _status, body, _ = http("GET", f"{servers.base(0)}/api/v1/posts/?author_id={author}", token=token)
        written = (body or {}).get("count")
        figures["writes"] += written or 0
        figures["answers_201"] += sum(1 for status, _ in answers if status == 201)
        if written != 1 or len(ids) != 1 or any(status != 201 for status, _ in answers):
            tally.fail(f"one Idempotency-Key from {clients} clients: {written} posts written, ids {ids}, {answers[:5]}")
    return dict(figures)


def phase_throttle(
    servers: Servers, token: str, tally: Tally, budget: int, clients: int, per_client: int
) -> dict[str, int]:
    def client(i: int) -> Counter[int]:
        got: Counter[int] = Counter()
        for _ in range(per_client):
            status, _, _ = http("GET", f"{servers.base(i)}/api/v1/users/?page_size=1", token=token)
            tally.count("throttled_read", status)
            got[status] += 1
        return got

    total: Counter[int] = Counter()
    for got in in_threads(clients, client):
        total.update(got)
    if total[200] != budget or total[200] + total[429] != clients * per_client:
        tally.fail(
            f"throttle over {len(servers.ports)} instances: {total[200]} admitted of a budget of {budget} ({dict(total)})"
        )
    return {"sent": clients * per_client, "admitted": total[200], "429": total[429], "budget": budget}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI form: fewer rounds (about a minute)")
    args = parser.parse_args()
    started = time.time()
    rounds = 3 if args.short else 10
    var_dir = ROOT / "var" / "races"
    var_dir.mkdir(parents=True, exist_ok=True)
    key_prefix = f"races-{uuid.uuid4().hex[:8]}"
    env = app_env(PREFIX, var_dir, key_prefix)
    log(f"databases {PREFIX}*: fresh; migrating")
    fresh_databases(PREFIX)
    manage(env, "migrate_all")
    manage(env, "ensure_legacy_table")
    token = manage(env, "create_api_token", "races-drill", "--staff").stdout.strip().splitlines()[-1]
    tally = Tally()
    report: dict[str, dict[str, int]] = {}
    budget = 60
    throttle_env = {**env, "API_THROTTLE_RATE": f"{budget}/hour", "CACHE_KEY_PREFIX": key_prefix + "-t"}
    log(f"gunicorn x2 on {PORTS[0]},{PORTS[1]} (shared Redis {REDIS_URL}); USER_DELETION_ANALYTICS=delete")
    with Servers(env, PORTS[:2], var_dir) as servers:
        t = time.time()
        report["orphans"] = phase_orphans(servers, token, tally, rounds, writers=6)
        log(f"orphans: {report['orphans']} ({time.time() - t:.1f}s)")
        t = time.time()
        report["deletes"] = phase_deletes(servers, token, tally, rounds, clients=20)
        log(f"deletes: {report['deletes']} ({time.time() - t:.1f}s)")
        t = time.time()
        report["if_match"] = phase_if_match(servers, token, tally, 4.0 if args.short else 15.0, clients=8)
        log(f"if_match: {report['if_match']} ({time.time() - t:.1f}s)")
        t = time.time()
        report["idempotency"] = phase_idempotency(servers, token, tally, rounds, clients=16)
        log(f"idempotency: {report['idempotency']} ({time.time() - t:.1f}s)")
    check = manage(env, "check_references", check=False)
    orphans_line = [line for line in check.stdout.splitlines() if line.startswith("orphans:")]
    report["check_references"] = {"exit": check.returncode}
    log(
        "check_references: "
        + " | ".join(line for line in check.stdout.splitlines() if ": " in line and "batch" not in line)
    )
    if check.returncode != 0:
        tally.fail(f"check_references found orphans: {orphans_line}")
    log(f"gunicorn x2 on {PORTS[2]},{PORTS[3]} with API_THROTTLE_RATE={budget}/hour")
    with Servers(throttle_env, PORTS[2:4], var_dir) as servers:
        throttle_token = manage(env, "create_api_token", "races-throttle", "--staff").stdout.strip().splitlines()[-1]
        report["throttle"] = phase_throttle(servers, throttle_token, tally, budget, clients=8, per_client=20)
        log(f"throttle: {report['throttle']}")
    server_errors = tally.server_errors()
    print("== race drill figures")
    print(f"orphans (check_references)           : {'0' if check.returncode == 0 else orphans_line}")
    print(
        f"posts left after each deletion        : {report['orphans'].get('posts_left_after_delete', 0)}"
        f"  (writes: {report['orphans'].get('create_post_201', 0)} x 201, {report['orphans'].get('create_post_400', 0)} x 400;"
        f" events {report['orphans'].get('create_event_201', 0)} x 201, {report['orphans'].get('create_event_400', 0)} x 400)"
    )
    print(
        f"concurrent deletes                    : {report['deletes'].get('204', 0)} x 204, {report['deletes'].get('404', 0)} x 404"
        f" over {rounds} users"
    )
    print(
        f"lost updates (If-Match)               : {report['if_match']['lost_updates']}"
        f"  ({report['if_match'].get('200', 0)} x 200, {report['if_match'].get('412', 0)} x 412, final counter {report['if_match']['final_counter']})"
    )
    print(
        f"writes per idempotency key            : {report['idempotency'].get('writes', 0)} over {rounds} keys"
        f"  ({report['idempotency'].get('answers_201', 0)} x 201, {report['idempotency'].get('409_in_progress', 0)} x 409 retried)"
    )
    print(
        f"throttle admitted / budget            : {report['throttle']['admitted']} / {report['throttle']['budget']}"
        f"  ({report['throttle']['sent']} sent, {report['throttle']['429']} x 429)"
    )
    print(f"5xx or no answer                      : {server_errors}")
    print(f"statuses: {dict(sorted((f'{op} {s}', n) for (op, s), n in tally.statuses.items()))}")
    print(f"duration: {time.time() - started:.1f}s")
    if server_errors:
        tally.fail(f"{server_errors} answers were 5xx or none")
    if tally.failures:
        print(f"RACE DRILL FAILED: {len(tally.failures)} failure(s)")
        return 1
    print("RACE DRILL OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
