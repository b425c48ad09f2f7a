"""nginx in front of gunicorn (docker/nginx/switchyard.conf.template via scripts/proxy), for real:
Problem Details for the errors nginx answers itself, hashed static files with gzip and a long
Cache-Control, X-Forwarded-* set by the proxy, slow clients cut off, and a 502 when the instance
is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import aliases
from tests.factories import make_account, make_post, make_user
from tests.ops.instances import ROOT, Instances

ALL = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY, aliases.CACHE]
pytestmark = [pytest.mark.real_engines, pytest.mark.django_db(transaction=True, databases=ALL)]


def raw(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict[str, str], bytes, float]:
    """Send ``data`` on a new connection; (status, headers, body, seconds until the proxy closed)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
    elapsed = time.monotonic() - started
    answer = b"".join(chunks)
    if not answer:
        return 0, {}, b"", elapsed
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body, elapsed


def problem(status: int, headers: dict[str, str], body: bytes) -> dict:
    import json

    assert headers.get("content-type") == "application/problem+json", (status, headers, body[:200])
    payload = json.loads(body)
    assert payload["status"] == status and payload["type"].startswith("urn:switchyard:problem:")
    return payload


def test_nginx_answers_its_own_errors_as_problem_details(tmp_path: Path) -> None:
    with Instances(tmp_path, count=1, env={"NGINX_CLIENT_HEADER_TIMEOUT": "2", "MAX_BODY_BYTES": "1000"}) as service:
        port = service.port
        cases = {
            # request line over 8 KB
            414: b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            # a 10 KB header
            431: b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: "
            + b"a" * 10240
            + b"\r\nConnection: close\r\n\r\n",
            # a bad Content-Length
            400: b"POST /api/v1/posts/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 12abc\r\nConnection: close\r\n\r\n",
            # an unknown transfer coding
            501: b"POST /api/v1/posts/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\nConnection: close\r\n\r\n",
            # a body over MAX_BODY_BYTES, refused before a byte of it is read
            413: b"POST /api/v1/posts/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n",
        }
        for status, request in cases.items():
            got, headers, body, _ = raw(port, request)
            assert got == status, (status, got, body[:300])
            problem(status, headers, body)
            assert headers.get("x-request-id")
        # 150 headers of a few bytes: within nginx's 32 KB, passed on (gunicorn's own limits are
        # lifted behind the proxy), answered by the service.
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        got, headers, body, _ = raw(
            port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + many + b"Connection: close\r\n\r\n"
        )
        assert got == 200 and body.endswith(b'{"status":"pass"}')
        # The service's own errors pass through untouched.
        got, headers, body, _ = raw(
            port, b"GET /api/v1/posts/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        assert got == 401 and problem(401, headers, body)["type"].endswith("not-authenticated")
        # A client that never finishes its headers is closed within client_header_timeout (2 s).
        got, _, _, closed_after = raw(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1", timeout=15)
        assert got in (0, 408) and 1.5 <= closed_after <= 4.0, (got, closed_after)
        # The instance gone (its socket removed): 502 in Problem Details.
        # (nginx keeps idle connections to gunicorn for 4 s: wait for them to go.)
        os.unlink(service.socket_path(0))
        time.sleep(4.5)
        got, headers, body, _ = raw(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        assert got == 502
        problem(502, headers, body)


def test_forwarded_headers_and_hashed_static_files(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "SWITCHYARD_VAR_DIR": str(var),
        "STATIC_HASHED_NAMES": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )
    assert (var / "static" / "staticfiles.json").is_file()
    with Instances(tmp_path, count=1) as service:
        status, _, page = service.request("GET", "/api/docs/")
        assert status == 200
        marker = b"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle."
        start = page.index(marker)
        url = page[start : page.index(b'"', start)].decode()
        assert len(url.rsplit(".", 2)[1]) == 12  # the content hash
        status, headers, body = service.request("GET", url, headers={"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert len(body) < 600_000  # 1.6 MB uncompressed
        status, headers, _ = service.request(
            "GET", "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"
        )
        assert status == 200 and headers["Cache-Control"] == "public, max-age=60"
    # The proxy sets X-Forwarded-Proto from the connection (a client's own value is replaced) and
    # gunicorn trusts it from the proxy: the scheme of the URLs the service builds.
    _, token = make_account()
    author = make_user()
    make_post(author=author)
    make_post(author=author)
    with Instances(tmp_path, count=1) as service:
        status, _, proxied = service.request(
            "GET", "/api/v1/posts/?page_size=1", token=token.key, headers={"X-Forwarded-Proto": "https"}
        )
        _, _, direct = service.request(
            "GET", "/api/v1/posts/?page_size=1", token=token.key, instance=0, headers={"X-Forwarded-Proto": "https"}
        )
    assert status == 200
    assert proxied["next"].startswith("http://localhost/") and direct["next"].startswith("https://localhost/")


@pytest.mark.parametrize(
    ("bind", "token", "refused"),
    [
        ("0.0.0.0:18390", "", True),
        ("0.0.0.0:18390", "scrape-me", False),
        ("127.0.0.1:18390", "", False),
        ("unix:/tmp/switchyard-check.sock", "", False),
    ],
)
def test_metrics_on_a_reachable_address_need_a_token(bind: str, token: str, refused: bool) -> None:
    env = {
        **os.environ,
        "METRICS_ENABLED": "1",
        "METRICS_TOKEN": token,
        "BIND": bind,
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "--check-config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode != 0) is refused, result.stderr[-500:]
    assert ("needs METRICS_TOKEN" in result.stderr + result.stdout) is refused
