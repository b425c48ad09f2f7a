"""nginx in front of gunicorn (docker/nginx/switchyard.conf.template via scripts/proxy), for real:
Problem Details with the service's security headers for every status nginx answers itself (each
provoked for real, and read by the generated Python client), hashed static files with gzip and a
long Cache-Control, links that name the host and port the client reached, X-Forwarded-* set by the
proxy, compression with ETags that still work, slow clients cut off, and a 502 when the instance
is gone."""

from __future__ import annotations

import gzip
import http.client
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from core import aliases
from tests.factories import make_account, make_post, make_user
from tests.ops.instances import ROOT, Instances, free_port

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


#: What the service sends on every answer (core/settings.py; docs/security.md).
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
}


def problem(status: int, headers: dict[str, str], body: bytes) -> dict:
    """The answer is the service's Problem Details shape with its security headers (header names
    lower-case)."""
    assert headers.get("content-type") == "application/problem+json", (status, headers, body[:200])
    payload = json.loads(body)
    assert payload["status"] == status and payload["type"].startswith("urn:switchyard:problem:")
    assert set(payload) >= {"type", "title", "status", "detail", "errors"} and payload["title"] and payload["detail"]
    assert isinstance(payload["errors"], list)
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (status, name, headers)
    assert headers.get("x-request-id")
    return payload


def nginx_problem(status: int, headers: dict[str, str], body: bytes, client: ModuleType | None = None) -> dict:
    """An answer nginx made itself: the problem shape, ``errors`` empty, never cached; and, with the
    generated Python client, read as its typed ``Problem``."""
    payload = problem(status, headers, body)
    assert payload["errors"] == [] and headers.get("cache-control") == "no-store"
    if client is not None:
        typed = client.models.Problem.from_dict(payload)
        assert typed.status == status and typed.errors == [] and typed.type_ == payload["type"]
    return payload


@pytest.fixture(scope="module")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The Python client .ci/contract.sh generates from openapi/schema.yaml (openapi-python-client)."""
    out = tmp_path_factory.mktemp("pyclient")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(ROOT / "openapi" / "schema.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(out / "switchyard_client"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sys.path.insert(0, str(out))
    try:
        module = importlib.import_module("switchyard_client")
        importlib.import_module("switchyard_client.models")
        importlib.import_module("switchyard_client.api.posts.posts_create")
        importlib.import_module("switchyard_client.api.users.users_list")
    finally:
        sys.path.remove(str(out))
    return module


def test_nginx_answers_its_own_errors_as_problem_details(tmp_path: Path, python_client: ModuleType) -> None:
    static = tmp_path / "var" / "static" / "admin"  # STATIC_ROOT of the instances
    static.mkdir(parents=True)
    (static / "probe.css").write_text("body { color: black; }\n")
    with Instances(
        tmp_path,
        count=1,
        env={"NGINX_CLIENT_HEADER_TIMEOUT": "2", "NGINX_CLIENT_BODY_TIMEOUT": "2", "MAX_BODY_BYTES": "1000"},
    ) as service:
        port = service.port
        close = b"Host: localhost\r\nConnection: close\r\n\r\n"
        cases = [
            # request line over 8 KB
            (414, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + close),
            # a 10 KB header
            (431, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 10240 + b"\r\n" + close),
            # a bad Content-Length
            (400, b"POST /api/v1/posts/ HTTP/1.1\r\nContent-Length: 12abc\r\n" + close),
            # an unknown transfer coding
            (501, b"POST /api/v1/posts/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n" + close),
            # a body over MAX_BODY_BYTES, refused before a byte of it is read
            (413, b"POST /api/v1/posts/ HTTP/1.1\r\nContent-Length: 5000\r\n" + close),
            # TRACE, anywhere
            (405, b"TRACE / HTTP/1.1\r\n" + close),
            (405, b"TRACE /api/v1/users/ HTTP/1.1\r\n" + close),
            # a write to a static file
            (405, b"POST /static/admin/probe.css HTTP/1.1\r\nContent-Length: 0\r\n" + close),
            # no such static file; a directory, with or without its slash (no listing, no redirect)
            (404, b"GET /static/nothing-here.css HTTP/1.1\r\n" + close),
            (404, b"GET /static/admin/ HTTP/1.1\r\n" + close),
            (404, b"GET /static/admin HTTP/1.1\r\n" + close),
            # the error pages themselves are not reachable from outside
            (404, b"GET /_problem/502.json HTTP/1.1\r\n" + close),
        ]
        # A static file carries the security headers too.
        got, headers, body, _ = raw(port, b"GET /static/admin/probe.css HTTP/1.1\r\n" + close)
        assert got == 200 and body.startswith(b"body")
        assert all(headers.get(name) == value for name, value in SECURITY_HEADERS.items()), headers
        for status, request in cases:
            got, headers, body, _ = raw(port, request)
            assert got == status, (status, got, request[:60], body[:300])
            nginx_problem(status, headers, body, python_client)
        # nginx's request id: the client's when valid by the service's rule, else its own.
        _, headers, _, _ = raw(port, b"TRACE / HTTP/1.1\r\nX-Request-ID: trace-1.a:b\r\n" + close)
        assert headers["x-request-id"] == "trace-1.a:b"
        _, headers, _, _ = raw(port, b'TRACE / HTTP/1.1\r\nX-Request-ID: a"b\r\n' + close)
        assert headers["x-request-id"] != 'a"b' and len(headers["x-request-id"]) == 32
        # The generated client's own call reads nginx's 413 (documented on posts_create) as a Problem.
        posts_create = python_client.api.posts.posts_create
        models = python_client.models
        with python_client.AuthenticatedClient(
            base_url=f"http://127.0.0.1:{port}", token="unused", prefix="Token"
        ) as client:
            answer = posts_create.sync_detailed(
                client=client, body=models.PostInput(title="x" * 2000, content="y", author_id=1)
            )
        assert answer.status_code == 413 and isinstance(answer.parsed, models.Problem)
        assert answer.parsed.errors == [] and answer.headers["X-Frame-Options"] == "DENY"
        # 150 headers of a few bytes: within nginx's 32 KB, passed on (gunicorn's own limits are
        # lifted behind the proxy), answered by the service.
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        got, headers, body, _ = raw(
            port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + many + b"Connection: close\r\n\r\n"
        )
        assert got == 200 and body.endswith(b'{"status":"pass"}')
        # The service's own errors pass through untouched.
        got, headers, body, _ = raw(port, b"GET /api/v1/posts/ HTTP/1.1\r\n" + close)
        assert got == 401 and problem(401, headers, body)["type"].endswith("not-authenticated")
        # A client that never finishes its headers, or its body, is closed within
        # client_header_timeout / client_body_timeout (2 s). nginx logs a 408 and sends nothing.
        got, _, _, closed_after = raw(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1", timeout=15)
        assert got == 0 and 1.5 <= closed_after <= 4.0, (got, closed_after)
        got, _, _, closed_after = raw(
            port, b"POST /api/v1/posts/ HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{", timeout=15
        )
        assert got == 0 and 1.5 <= closed_after <= 4.0, (got, closed_after)
        # The instance gone (its socket removed): 502 in Problem Details.
        # (nginx keeps idle connections to gunicorn for 4 s: wait for them to go.)
        os.unlink(service.socket_path(0))
        time.sleep(4.5)
        got, headers, body, _ = raw(port, b"GET /health HTTP/1.1\r\n" + close)
        assert got == 502
        nginx_problem(502, headers, body, python_client)


def fetch(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request through nginx; (status, headers, the body's bytes as they came)."""
    sent = {"Host": "localhost", **(headers or {})}
    if token:
        sent["Authorization"] = f"Token {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=data, headers=sent)
        answer = conn.getresponse()
        merged: dict[str, str] = {}  # a header sent twice: its values joined, as HTTP reads them
        for name, value in answer.getheaders():
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return answer.status, merged, answer.read()
    finally:
        conn.close()


class StallingUpstream:
    """A UNIX socket that takes connections and reads what comes, and never answers (an instance
    stuck in a request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(64)
        self.held: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.server.close()
        for conn in self.held:
            conn.close()
        self.path.unlink(missing_ok=True)


def start_variant(run_dir: Path, variant: Path, port: int) -> subprocess.Popen[bytes]:
    """A second nginx with the configuration scripts/proxy rendered into ``run_dir``, its files
    under ``variant`` (its upstream too: ``variant``/gunicorn-1.sock), on ``port``, with what the
    committed configuration does not use and a test needs to make nginx answer 403, 429 and 503
    itself (deny, limit_req) and a 1 s proxy_read_timeout (504)."""
    (variant / "tmp").mkdir(parents=True)
    conf = (run_dir / "switchyard.conf").read_text().replace(str(run_dir), str(variant))
    conf = conf.replace(conf[conf.index("listen ") : conf.index(" default_server")], f"listen 127.0.0.1:{port}")
    limits = (
        "limit_req_zone $binary_remote_addr zone=sy_test_503:1m rate=1r/m;\n"
        "limit_req_zone $binary_remote_addr zone=sy_test_429:1m rate=1r/m;\n"
    )
    locations = """
    location = /test/forbidden { deny all; }
    location = /api/v1/users/ {
        limit_req zone=sy_test_503;
        proxy_pass http://switchyard;
        proxy_read_timeout 1s;
    }
    location = /test/limited {
        limit_req zone=sy_test_429;
        limit_req_status 429;
        proxy_pass http://switchyard;
        proxy_read_timeout 1s;
    }
"""
    server = conf.index("server {")
    conf = conf[:server] + limits + conf[server:].replace("server {\n", "server {\n" + locations, 1)
    (variant / "switchyard.conf").write_text(conf)
    main = (run_dir / "nginx.conf").read_text().replace(str(run_dir), str(variant))
    (variant / "nginx.conf").write_text(main)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen([nginx, "-c", str(variant / "nginx.conf"), "-e", str(variant / "error.log")])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((variant / "error.log").read_text()[-2000:]) from None
            time.sleep(0.1)


def test_every_status_nginx_makes_is_a_problem_with_the_security_headers(
    tmp_path: Path, python_client: ModuleType
) -> None:
    """403 (deny), 429 and 503 (limit_req), 500 (nginx cannot buffer a body), 504 (an instance that
    stalls), 502 (no instance), each for real, through the committed error pages and headers."""
    with Instances(tmp_path, count=1) as service:
        variant = tmp_path / "variant"
        port = free_port()
        variant.mkdir()
        upstream = StallingUpstream(variant / "gunicorn-1.sock")
        nginx = start_variant(service.run_dir, variant, port)
        try:
            close = b"Host: localhost\r\nConnection: close\r\n\r\n"
            got, headers, body, _ = raw(port, b"GET /test/forbidden HTTP/1.1\r\n" + close)
            assert got == 403
            nginx_problem(403, headers, body, python_client)
            # limit_req: the first request passes (and the stalled instance makes it a 504 after
            # proxy_read_timeout); the next within the minute is refused.
            got, headers, body, waited = raw(port, b"GET /test/limited HTTP/1.1\r\n" + close)
            assert got == 504 and 0.9 <= waited <= 5, (got, waited)
            nginx_problem(504, headers, body, python_client)
            got, headers, body, _ = raw(port, b"GET /test/limited HTTP/1.1\r\n" + close)
            assert got == 429
            nginx_problem(429, headers, body, python_client)
            # The same through the generated client's own call: 504 is not in the schema (read
            # from the body), 503 is (parsed as a Problem).
            users_list = python_client.api.users.users_list
            models = python_client.models
            with python_client.AuthenticatedClient(
                base_url=f"http://127.0.0.1:{port}", token="unused", prefix="Token"
            ) as client:
                first = users_list.sync_detailed(client=client)
                second = users_list.sync_detailed(client=client)
            assert first.status_code == 504 and first.parsed is None
            assert models.Problem.from_dict(json.loads(first.content)).status == 504
            assert second.status_code == 503 and isinstance(second.parsed, models.Problem)
            assert second.parsed.errors == [] and second.headers["X-Content-Type-Options"] == "nosniff"
            got, headers, body, _ = raw(port, b"GET /api/v1/users/ HTTP/1.1\r\n" + close)
            assert got == 503
            nginx_problem(503, headers, body, python_client)
            # A body over client_body_buffer_size (64 KB) goes to a temporary file: with the
            # directory made a plain file, nginx cannot write it and answers 500.
            temp = variant / "tmp" / "client_body"
            shutil.rmtree(temp)
            temp.write_text("not a directory")
            payload = b"x" * 100_000
            got, headers, body, _ = raw(
                port,
                b"POST /api/v1/analytics/events/batch/ HTTP/1.1\r\nContent-Length: %d\r\n" % len(payload)
                + close
                + payload,
            )
            assert got == 500
            nginx_problem(500, headers, body, python_client)
            # No instance at all.
            upstream.close()
            got, headers, body, _ = raw(port, b"GET /health HTTP/1.1\r\n" + close)
            assert got == 502
            nginx_problem(502, headers, body, python_client)
        finally:
            upstream.close()
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=20)


def test_links_name_the_host_and_port_the_client_reached(tmp_path: Path) -> None:
    """nginx passes the client's Host (port included) on: next/previous name the address the client
    reached, a client that follows them gets the next page, and ALLOWED_HOSTS is still enforced."""
    _, token = make_account()
    for _ in range(3):
        make_user()
    with Instances(tmp_path, count=1) as service:
        port = service.port
        assert port != 80
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            url = "/api/v1/users/?page_size=1"
            seen = []
            while url:
                conn.request("GET", url, headers={"Host": host, "Authorization": f"Token {token.key}"})
                answer = conn.getresponse()
                assert answer.status == 200, answer.read()[:300]
                page = json.loads(answer.read())
                seen.extend(user["id"] for user in page["results"])
                if page["next"] is None:
                    break
                link = urlsplit(page["next"])
                assert (link.scheme, link.netloc) == ("http", host), page["next"]
                if page["previous"]:
                    assert urlsplit(page["previous"]).netloc == host
                # Follow it as a client would: to the host and port it names.
                conn.close()
                conn = http.client.HTTPConnection(link.hostname, link.port, timeout=15)
                url = link.path + "?" + link.query
            conn.close()
            assert len(seen) >= 3 and len(seen) == len(set(seen))
        # An IPv6 literal (in ALLOWED_HOSTS by default) keeps its brackets and port.
        status, _, page = service.request(
            "GET", "/api/v1/users/?page_size=1", token=token.key, headers={"Host": f"[::1]:{port}"}
        )
        assert status == 200 and page["next"].startswith(f"http://[::1]:{port}/api/v1/users/?")
        # A Host outside ALLOWED_HOSTS is the service's 400, port or not.
        for host in (f"evil.example:{port}", "evil.example"):
            status, headers, body = service.request("GET", "/api/v1/users/", token=token.key, headers={"Host": host})
            assert status == 400 and headers["Content-Type"] == "application/problem+json", (host, status, body)
        # Location stays a path (never nginx's or the service's idea of the host): a 201, and the
        # redirect to the slashed path.
        author = make_user()
        status, headers, created = service.request(
            "POST",
            "/api/v1/posts/",
            token=token.key,
            body={"author_id": author.pk, "title": "through the proxy"},
            headers={"Host": f"127.0.0.1:{port}"},
        )
        assert status == 201 and headers["Location"] == f"/api/v1/posts/{created['id']}/"
        status, headers, _ = service.request("GET", "/api/v1/users", token=token.key)
        assert status == 301 and headers["Location"] == "/api/v1/users/"


def test_compression_through_the_proxy_and_etags_in_both_forms(tmp_path: Path) -> None:
    """Answers of 1 KB and more leave gzipped with one Vary: Accept-Encoding,
    smaller ones and clients without gzip get the plain bytes; the ETag nginx weakens works back in
    If-None-Match and If-Match, and an older one in either form is still a 412."""
    _, token = make_account()
    for _ in range(50):
        make_user()
    post = make_post(content="a paragraph of text " * 100)
    with Instances(tmp_path, count=1) as service:
        gz = {"Accept-Encoding": "gzip"}
        assert fetch(service.port, "GET", "/health")[0] == 200
        status, headers, packed = fetch(service.port, "GET", "/api/v1/users/?page_size=50", token=token.key, headers=gz)
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert [v.strip().lower() for v in headers["Vary"].split(",")].count("accept-encoding") == 1
        status, plain_headers, plain = fetch(service.port, "GET", "/api/v1/users/?page_size=50", token=token.key)
        assert "Content-Encoding" not in plain_headers and len(json.loads(plain)["results"]) == 50
        assert gzip.decompress(packed) == plain and len(packed) < len(plain) / 3
        # nginx compresses 200, 403 and 404 answers only: a problem of more than 1 KB leaves plain
        # (and the service, asked without Accept-Encoding, did not compress it either).
        events = [{"event_type": "", "data": {}} for _ in range(40)]
        status, headers, body = fetch(
            service.port,
            "POST",
            "/api/v1/analytics/events/batch/",
            token=token.key,
            body={"events": events},
            headers=gz,
        )
        assert status == 400 and "Content-Encoding" not in headers and len(body) >= 1024
        assert json.loads(body)["status"] == 400
        # Under 1 KB: plain, strong ETag.
        status, headers, _ = fetch(service.port, "GET", f"/api/v1/users/{post.author_id}/", token=token.key, headers=gz)
        assert status == 200 and "Content-Encoding" not in headers and headers["ETag"].startswith('"')
        # The post (over 1 KB): gzipped by nginx, its ETag weakened.
        url = f"/api/v1/posts/{post.pk}/"
        status, headers, _ = fetch(service.port, "GET", url, token=token.key)
        strong = headers["ETag"]
        status, headers, _ = fetch(service.port, "GET", url, token=token.key, headers=gz)
        assert headers["Content-Encoding"] == "gzip" and headers["ETag"] == f"W/{strong}"
        for sent in (strong, f"W/{strong}"):
            status, _, body = fetch(service.port, "GET", url, token=token.key, headers={**gz, "If-None-Match": sent})
            assert (status, body) == (304, b"")
        status, headers, _ = fetch(
            service.port,
            "PATCH",
            url,
            token=token.key,
            body={"title": "one"},
            headers={**gz, "If-Match": f"W/{strong}"},
        )
        assert status == 200
        for sent in (strong, f"W/{strong}"):
            status, headers, body = fetch(
                service.port, "PATCH", url, token=token.key, body={"title": "two"}, headers={**gz, "If-Match": sent}
            )
            assert status == 412 and headers["Content-Type"] == "application/problem+json"
        # The admin's pages are never compressed (BREACH: docs/security.md).
        status, headers, body = fetch(service.port, "GET", "/admin/login/", headers=gz)
        assert status == 200 and "Content-Encoding" not in headers and len(body) >= 1024


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
