"""Hardened defaults: the same security headers on every answer (411, 413 and a bad Host's 400
included), one WARNING line for a bad Host, `check --deploy` clean with DJANGO_HTTPS=1, private
files under var/."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client

from core import aliases
from core.db_config import build_databases

ROOT = Path(__file__).resolve().parents[2]
HEADERS = ("X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy", "X-Frame-Options", "X-Request-ID")


@pytest.mark.django_db(databases=[aliases.DEFAULT])
def test_every_answer_carries_the_same_security_headers(settings) -> None:  # type: ignore[no-untyped-def]
    client = Client()
    answers = {
        "200": client.get("/health"),
        "401": client.get("/api/v1/posts/"),
        "404": client.get("/nowhere"),
        "411": client.generic("POST", "/api/v1/posts/", b"", HTTP_TRANSFER_ENCODING="chunked"),
        "413": client.generic(
            "POST",
            "/api/v1/posts/",
            b"{}",
            CONTENT_TYPE="application/json",
            CONTENT_LENGTH=str(settings.MAX_BODY_BYTES + 1),
        ),
        "400": client.get("/health", HTTP_HOST="evil.example"),
    }
    for name, response in answers.items():
        assert str(response.status_code) == name, (name, response.status_code)
        missing = [h for h in HEADERS if not response.has_header(h)]
        assert not missing, (name, missing)
        assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"


def test_testserver_is_not_a_default_host() -> None:
    from core import settings as production

    assert "testserver" not in production.ALLOWED_HOSTS or "ALLOWED_HOSTS" in os.environ


@pytest.mark.django_db(databases=[aliases.DEFAULT])
def test_a_bad_host_logs_one_warning_line_without_traceback(caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.DEBUG, logger="django.security"):
        Client().get("/health", HTTP_HOST="evil.example" + "x" * 1000)
    records = [r for r in caplog.records if r.name.startswith("django.security")]
    assert len(records) == 1
    record = records[0]
    assert record.levelname == "WARNING" and record.exc_info is None and record.exc_text is None
    assert "Invalid HTTP_HOST" in record.getMessage() and len(record.getMessage()) <= 310


def test_check_deploy_is_clean_with_https_on() -> None:
    env = {
        **os.environ,
        "DJANGO_HTTPS": "1",
        "DJANGO_DEBUG": "0",
        "ALLOWED_HOSTS": "example.com",
        "SECRET_KEY": "k" + os.urandom(32).hex() + "-Q!z",
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout, done.stdout
    assert time.monotonic() - started < 60


def test_check_deploy_warns_without_https() -> None:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "ALLOWED_HOSTS": "example.com",
        "SECRET_KEY": "k" + os.urandom(32).hex() + "-Q!z",
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    env.pop("DJANGO_HTTPS", None)
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "W004" in done.stderr + done.stdout


def test_embedded_database_files_are_created_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    build_databases({}, var)
    files = sorted(var.iterdir())
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(var.stat().st_mode) == 0o700


def test_serve_script_keeps_var_private() -> None:
    text = (ROOT / "scripts" / "serve").read_text()
    assert "umask 077" in text and "chmod 600" in text
