"""``scripts/serve`` for real (embedded SQLite databases in a directory of the test's own): it
listens on loopback only unless BIND says otherwise (it prints a staff token), and its ``Try:``
line names the address it really serves on, with a token that works there."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.ops.instances import ROOT, free_port

DATABASE_VARIABLES = re.compile(r".*DATABASE(_REPLICA)?_URLS?|CACHE_URL|BIND|SECRET_KEY|SWITCHYARD_.*|DJANGO_.*")


def listeners(port: int) -> list[str]:
    """Local addresses of the sockets listening on ``port`` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.append(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    found.append(address)
    return found


def get(port: int, path: str, token: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Token {token}"} if token else {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_serve_listens_on_loopback_and_its_try_line_names_that_address(tmp_path: Path) -> None:
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not DATABASE_VARIABLES.fullmatch(name)}
    env.update(
        SWITCHYARD_VENV=sys.prefix,
        SWITCHYARD_VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        WEB_CONCURRENCY="1",
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(ROOT / "scripts" / "serve")],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if get(port, "/health") == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        output = log_path.read_text()
        # Loopback only: no socket on this port listens on every interface.
        assert listeners(port) == ["127.0.0.1"], listeners(port)
        tried = re.search(r'Try: curl -H "Authorization: Token (\S+)" (http://\S+)/api/v1/users/', output)
        assert tried, output[-3000:]
        token, base_url = tried.groups()
        assert base_url == f"http://127.0.0.1:{port}"
        assert f"serving on http://127.0.0.1:{port} (BIND=127.0.0.1:{port})" in output
        # The printed line works as printed: that address, that token.
        assert get(port, "/api/v1/users/", token) == 200
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
