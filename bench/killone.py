#!/usr/bin/env python3
"""One instance killed under load: nginx in front of two gunicorn instances (``scripts/stack``).

    bench/killone.py --url http://127.0.0.1:18700 --token TOKEN --pidfile var/stack/proxy/gunicorn-1.pid

Readers (GET /api/v1/users/?page_size=5) and writers (POST /api/v1/users/, each a new user) loop
through nginx, a new connection per request; after --before seconds the gunicorn master named by
--pidfile (web-1's, written by scripts/proxy) gets SIGKILL, and the loop goes on for --after
seconds. Its workers see their parent gone and exit; nginx then finds web-1's socket refusing and
passes the request to web-2 (``proxy_next_upstream error timeout``).

Expected, and checked (exit 1 otherwise):
- every read answers 2xx: a read is idempotent, nginx retries it on the other instance;
- every write answers 2xx, or 502 in the problem format (a POST already sent to web-1 when its
  worker went away is not retried: nginx does not repeat a non-idempotent request); never a 500,
  never another status; no client-side error or timeout (nginx always answers);
- every write acknowledged with 2xx is readable afterwards (by id);
- web-1's master and workers are gone, and requests still answer after it.
Counts per phase and kind are printed as JSON.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def log(message: str) -> None:
    print(f"==> killone: {message}", file=sys.stderr, flush=True)


class Client:
    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, str, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        headers = {"Host": "localhost", "Authorization": f"Token {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            content_type = response.getheader("Content-Type", "")
            try:
                parsed = json.loads(payload) if payload else None
            except ValueError:
                parsed = None
            return response.status, content_type, parsed
        finally:
            conn.close()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--pidfile", required=True, type=Path)
    parser.add_argument("--before", type=float, default=3.0)
    parser.add_argument("--after", type=float, default=8.0)
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--writers", type=int, default=2)
    args = parser.parse_args()

    master = int(args.pidfile.read_text().split()[0])
    cmdline = (Path("/proc") / str(master) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    if "gunicorn" not in cmdline:
        log(f"pid {master} of {args.pidfile} is not a gunicorn master: {cmdline!r}")
        return 2
    workers = children(master)
    client = Client(args.url, args.token)
    run_id = secrets.token_hex(4)
    samples: list[tuple[float, str, int | str, str]] = []  # (time, kind, status or error, content type)
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    killed_at: list[float] = []

    def loop(kind: str, number: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if kind == "read":
                    status, ctype, body = client.request("GET", "/api/v1/users/?page_size=5")
                else:
                    name = f"kill{run_id}w{number}n{n}"
                    status, ctype, body = client.request(
                        "POST", "/api/v1/users/", {"username": name, "email": f"{name}@example.com"}
                    )
                    if 200 <= status < 300:
                        with lock:
                            acknowledged.append(body["id"])
                outcome: int | str = status
            except (OSError, http.client.HTTPException) as exc:
                outcome, ctype = type(exc).__name__, ""
            with lock:
                samples.append((time.monotonic(), kind, outcome, ctype))

    threads = [threading.Thread(target=loop, args=("read", i)) for i in range(args.readers)]
    threads += [threading.Thread(target=loop, args=("write", i)) for i in range(args.writers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(args.before)
    log(f"SIGKILL to web-1's gunicorn master (pid {master}; workers {workers})")
    killed_at.append(time.monotonic())
    os.kill(master, signal.SIGKILL)
    gone_after = None
    deadline = killed_at[0] + args.after
    while time.monotonic() < deadline:
        if gone_after is None and not any(alive(pid) for pid in [master, *workers]):
            gone_after = round(time.monotonic() - killed_at[0], 2)
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(30)

    def tally(rows: list[tuple[float, str, int | str, str]]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for _, kind, outcome, _ in rows:
            out.setdefault(kind, {})
            out[kind][str(outcome)] = out[kind].get(str(outcome), 0) + 1
        return out

    before = [s for s in samples if s[0] < killed_at[0]]
    after = [s for s in samples if s[0] >= killed_at[0]]
    failures: list[str] = []
    for _, kind, outcome, ctype in samples:
        ok = isinstance(outcome, int) and 200 <= outcome < 300
        if kind == "read" and not ok:
            failures.append(f"a read answered {outcome}")
        elif kind == "write" and not ok and not (outcome == 502 and ctype.startswith("application/problem+json")):
            failures.append(f"a write answered {outcome} ({ctype or 'no content type'})")
    if gone_after is None:
        failures.append(f"web-1's master or workers still run {args.after} s after SIGKILL")
    served_after = [s for s in after if s[0] > killed_at[0] + (gone_after or 0) and s[2] == 200]
    if not served_after:
        failures.append("no read answered 200 once web-1 was gone")
    # Every acknowledged write is there (read with retries: reads may go to the replica).
    missing = []
    for user_id in acknowledged:
        for _ in range(50):
            status, _, _ = client.request("GET", f"/api/v1/users/{user_id}/")
            if status == 200:
                break
            time.sleep(0.1)
        else:
            missing.append(user_id)
    if missing:
        failures.append(f"{len(missing)} acknowledged writes not found: {missing[:10]}")

    report = {
        "seconds": round(time.monotonic() - started, 1),
        "killed_pid": master,
        "workers": workers,
        "web1_gone_after_s": gone_after,
        "before_kill": tally(before),
        "after_kill": tally(after),
        "acknowledged_writes": len(acknowledged),
        "missing_writes": len(missing),
        "failures": sorted(set(failures)),
    }
    print(json.dumps(report, indent=2))
    log("PASS" if not failures else "FAIL: " + "; ".join(sorted(set(failures))))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
