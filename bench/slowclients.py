#!/usr/bin/env python3
"""Slow clients against the proxy, and against bare gunicorn for the record.

    bench/slowclients.sh            # 15 s baseline, 30 s under attack, 10 s client timeouts
    bench/slowclients.sh --short    # CI form: 5 s baseline, 12 s under attack, 4 s timeouts
    bench/slowclients.sh --short --target-port 18700 --token TOKEN   # a running proxy (the stack)

For each target (nginx in front of one gunicorn instance via scripts/proxy; then the same gunicorn
alone on a TCP port), on loopback only:

1. baseline: --clients threads in a closed loop, alternating GET /health and an authenticated
   GET /api/v1/posts/?page_size=5 (new connection each, 3 s client timeout);
2. attack: the same load while 50 connections trickle headers (a request line and one short
   header line a second, never the blank line) and 20 trickle a body (a POST with
   ``Content-Length: 200`` and a valid token, one byte every 2 s for 3 bytes, then silence: the
   body stays 197 bytes short).

Figures per target: the load's p50/p99/max and errors in each phase; for each trickling
connection, when the server closed it (header tricklers: seconds after connecting; body tricklers:
seconds after their last byte), or that it was still open when the drill ended.
Pass (exit 0) when, through the proxy: the attack's p99 is within 2x the baseline's (with a 10 ms
floor under the baseline, for timer noise on a shared machine), the load had 0 errors, and every
header trickler was closed within NGINX_CLIENT_HEADER_TIMEOUT + 1.5 s of connecting and every body
trickler within NGINX_CLIENT_BODY_TIMEOUT + 1.5 s of its last byte. The bare-gunicorn figures are
printed beside them and never fail the run. Report: var/slowclients/slowclients-<time>.json.

With --target-port (and --token, a valid API token) the drill starts nothing: it targets the nginx
already listening on that loopback port (``scripts/stack``'s), whose client timeouts are
--nginx-timeout (10 s, scripts/proxy's default); the attack lasts at least that + 8 s, so that a
body trickler's last byte (6 s in) plus the timeout falls inside it. No bare-gunicorn comparison.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROXY_PORT = int(os.environ.get("SLOWCLIENTS_PROXY_PORT", "18310"))
BARE_PORT = int(os.environ.get("SLOWCLIENTS_BARE_PORT", "18311"))
SLACK = 1.5


def log(message: str) -> None:
    print(f"==> slowclients: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, check=True, text=True, capture_output=True
    ).stdout


def create_token(env: dict[str, str]) -> str:
    """A read-only token (the drill only reads), issued as any client's: the key is printed once."""
    return manage(env, "create_api_token", "slowclients-bench", "--scopes", "read").strip().splitlines()[-1]


def wait_health(port: int, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health", headers={"Host": "localhost"})
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"127.0.0.1:{port} did not answer /health within {limit}s")


class Load:
    """Closed-loop clients; each request on a new connection, 3 s timeout."""

    def __init__(self, port: int, token: str, clients: int) -> None:
        self.port, self.token, self.clients = port, token, clients
        self.samples: list[tuple[float, float, str]] = []  # started, seconds, error ("" = 2xx)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def run_for(self, seconds: float) -> list[tuple[float, float, str]]:
        self.stop.clear()
        begin = len(self.samples)
        threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(10)
        return self.samples[begin:]

    def client(self, n: int) -> None:
        i = n
        while not self.stop.is_set():
            path = "/health" if i % 2 == 0 else "/api/v1/posts/?page_size=5"
            i += 1
            started = time.monotonic()
            error = ""
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3)
                conn.request("GET", path, headers={"Host": "localhost", "Authorization": f"Token {self.token}"})
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status != 200:
                    error = f"HTTP {response.status}"
            except Exception as exc:  # noqa: BLE001 - timeouts, resets: all counted
                error = type(exc).__name__
            with self.lock:
                self.samples.append((started, time.monotonic() - started, error))


class Trickler(threading.Thread):
    """One slow connection. kind "header": never finishes its headers; kind "body": a POST whose
    body stops after 3 bytes (one every 2 s). Records when the server closed the connection."""

    def __init__(self, port: int, kind: str, token: str, until: float) -> None:
        super().__init__(daemon=True)
        self.port, self.kind, self.token, self.until = port, kind, token, until
        self.connected_at = 0.0
        self.last_byte_at = 0.0
        self.closed_at: float | None = None
        self.answer = b""
        self.error = ""

    def run(self) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError as exc:
            self.error = type(exc).__name__
            return
        self.connected_at = time.monotonic()
        sock.setblocking(True)
        try:
            if self.kind == "header":
                self.send(sock, b"GET /health HTTP/1.1\r\nHost: localhost\r\n")
                n = 0
                while time.monotonic() < self.until and self.closed_at is None:
                    if self.poll_closed(sock, 1.0):
                        break
                    self.send(sock, b"X-Slow-%d: a\r\n" % n)
                    n += 1
            else:
                head = (
                    b"POST /api/v1/posts/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                    b"Authorization: Token " + self.token.encode() + b"\r\nContent-Length: 200\r\n\r\n"
                )
                self.send(sock, head)
                for byte in (b"{", b'"', b"t"):
                    if self.poll_closed(sock, 2.0):
                        break
                    self.send(sock, byte)
                while time.monotonic() < self.until and self.closed_at is None:
                    self.poll_closed(sock, 0.5)
        except OSError as exc:  # reset or broken pipe: the server closed it
            if self.closed_at is None:
                self.closed_at = time.monotonic()
                self.error = type(exc).__name__
        finally:
            sock.close()

    def send(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        self.last_byte_at = time.monotonic()

    def poll_closed(self, sock: socket.socket, seconds: float) -> bool:
        sock.settimeout(seconds)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            return False
        except ConnectionResetError:
            chunk = b""
        if chunk:
            self.answer += chunk
            # An answer (e.g. 408) is followed by the close: keep reading.
            return self.poll_closed(sock, seconds)
        self.closed_at = time.monotonic()
        return True

    def closure(self) -> float | None:
        if self.closed_at is None:
            return None
        return self.closed_at - (self.connected_at if self.kind == "header" else self.last_byte_at)


def phase_figures(samples: list[tuple[float, float, str]]) -> dict[str, Any]:
    ok = [s[1] * 1000 for s in samples if not s[2]]
    errors: dict[str, int] = {}
    for s in samples:
        if s[2]:
            errors[s[2]] = errors.get(s[2], 0) + 1
    return {
        "requests": len(samples),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "p50_ms": round(percentile(ok, 0.5), 1),
        "p99_ms": round(percentile(ok, 0.99), 1),
        "max_ms": round(max(ok), 1) if ok else None,
    }


def drill(port: int, token: str, args: argparse.Namespace) -> dict[str, Any]:
    load = Load(port, token, args.clients)
    baseline = phase_figures(load.run_for(args.baseline))
    until = time.monotonic() + args.attack
    tricklers = [Trickler(port, "header", token, until) for _ in range(args.header_tricklers)]
    tricklers += [Trickler(port, "body", token, until) for _ in range(args.body_tricklers)]
    for trickler in tricklers:
        trickler.start()
    time.sleep(0.5)  # all of them connected and trickling
    attack = phase_figures(load.run_for(max(args.attack - 0.5, 1)))
    for trickler in tricklers:
        trickler.join(args.attack + 10)
    closure: dict[str, Any] = {}
    for kind in ("header", "body"):
        group = [t for t in tricklers if t.kind == kind]
        times = [t.closure() for t in group]
        closed = [c for c in times if c is not None]
        statuses: dict[str, int] = {}
        for t in group:
            first = t.answer.split(b"\r\n", 1)[0].decode("latin-1") if t.answer else "no answer"
            statuses[first] = statuses.get(first, 0) + 1
        closure[kind] = {
            "connections": len(group),
            "closed_by_server": len(closed),
            "still_open_at_end": len(group) - len(closed) - sum(1 for t in group if t.error and t.closed_at is None),
            "connect_errors": sum(1 for t in group if t.closed_at is None and t.error),
            "closed_after_s_min": round(min(closed), 2) if closed else None,
            "closed_after_s_max": round(max(closed), 2) if closed else None,
            "answers": statuses,
        }
    return {"baseline": baseline, "under_attack": attack, "tricklers": closure}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--header-tricklers", type=int, default=50)
    parser.add_argument("--body-tricklers", type=int, default=20)
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-gunicorn comparison")
    parser.add_argument("--target-port", type=int, help="a running proxy on 127.0.0.1 (nothing started)")
    parser.add_argument("--token", help="an API token of the running service (with --target-port)")
    parser.add_argument("--nginx-timeout", type=int, default=10, help="the running proxy's client timeouts")
    args = parser.parse_args()
    if args.target_port and not args.token:
        parser.error("--target-port needs --token")
    args.baseline = 5.0 if args.short else 15.0
    args.attack = 12.0 if args.short else 30.0
    timeout = 4 if args.short else 10
    if args.target_port:
        timeout = args.nginx_timeout
        args.attack = max(args.attack, timeout + 8.0)

    var_dir = ROOT / "var" / "slowclients"
    shutil.rmtree(var_dir, ignore_errors=True)
    var_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "SWITCHYARD_VAR_DIR": str(var_dir),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
        "GUNICORN_THREADS": os.environ.get("GUNICORN_THREADS", "4"),
        "NGINX_CLIENT_HEADER_TIMEOUT": str(timeout),
        "NGINX_CLIENT_BODY_TIMEOUT": str(timeout),
    }
    if not args.target_port:
        log("migrating (manage.py migrate_all)")
        manage(env, "migrate_all")
    token = args.token or create_token(env)
    report: dict[str, Any] = {
        "clients": args.clients,
        "baseline_s": args.baseline,
        "attack_s": args.attack,
        "nginx_client_header_timeout_s": timeout,
        "nginx_client_body_timeout_s": timeout,
        "gunicorn": f"{env['WEB_CONCURRENCY']} workers x {env['GUNICORN_THREADS']} threads",
    }
    failures: list[str] = []

    def start(cmd: list[str], extra: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        out = (var_dir / f"{name}.log").open("wb")
        return subprocess.Popen(
            cmd, cwd=ROOT, env={**env, **extra}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    if args.target_port:
        log(f"the running proxy on 127.0.0.1:{args.target_port}")
        report["target_port"] = args.target_port
        report.pop("gunicorn")
        wait_health(args.target_port)
        report["proxy"] = drill(args.target_port, token, args)
    else:
        log(f"nginx on 127.0.0.1:{PROXY_PORT} in front of gunicorn (scripts/proxy)")
        proxy = start(
            [str(ROOT / "scripts" / "proxy"), str(var_dir / "proxy")], {"BIND": f"127.0.0.1:{PROXY_PORT}"}, "proxy"
        )
        try:
            wait_health(PROXY_PORT)
            report["proxy"] = drill(PROXY_PORT, token, args)
        finally:
            stop(proxy)
    if not args.no_bare and not args.target_port:
        log(f"bare gunicorn on 127.0.0.1:{BARE_PORT} (for the record)")
        bare = start(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            {"BIND": f"127.0.0.1:{BARE_PORT}", "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "bare-metrics")},
            "bare",
        )
        try:
            wait_health(BARE_PORT)
            report["bare_gunicorn"] = drill(BARE_PORT, token, args)
        finally:
            stop(bare)

    proxied = report["proxy"]
    base_p99 = max(proxied["baseline"]["p99_ms"], 10.0)
    if proxied["under_attack"]["p99_ms"] > 2 * base_p99:
        failures.append(f"p99 under attack {proxied['under_attack']['p99_ms']} ms > 2 x baseline {base_p99} ms")
    for phase in ("baseline", "under_attack"):
        if proxied[phase]["errors"]:
            failures.append(f"{proxied[phase]['errors']} errors in the {phase} load through the proxy")
    for kind, limit in (("header", timeout + SLACK), ("body", timeout + SLACK)):
        group = proxied["tricklers"][kind]
        if group["closed_by_server"] != group["connections"]:
            failures.append(
                f"{group['connections'] - group['closed_by_server']} {kind} tricklers not closed by the proxy"
            )
        elif group["closed_after_s_max"] > limit:
            failures.append(f"a {kind} trickler was closed after {group['closed_after_s_max']} s (limit {limit} s)")
    report["failures"] = failures
    out = var_dir / f"slowclients-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    log(f"report: {out}")
    log("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
