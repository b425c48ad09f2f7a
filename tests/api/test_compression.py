"""gzip from the service itself (api.middleware.CompressionMiddleware): answers of 1 KB and more of
a text-like type, to clients that accept gzip; never the admin's pages (docs/security.md, BREACH).
Through nginx: tests/ops/test_proxy.py."""

from __future__ import annotations

import gzip

import pytest

from api.middleware import COMPRESS_MIN_BYTES
from tests.factories import make_user

ALL = ["default", "users_db", "analytics_db", "cache_db", "legacy_db"]
pytestmark = pytest.mark.django_db(databases=ALL)


def vary(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {part.strip().lower() for part in response.get("Vary", "").split(",") if part.strip()}


def test_a_page_of_users_leaves_compressed_when_the_client_accepts_gzip(staff_client) -> None:
    for _ in range(50):
        make_user()
    plain = staff_client.get("/api/v1/users/?page_size=50")
    assert plain.status_code == 200 and "Content-Encoding" not in plain
    assert len(plain.content) >= 5 * COMPRESS_MIN_BYTES and "accept-encoding" in vary(plain)
    packed = staff_client.get("/api/v1/users/?page_size=50", HTTP_ACCEPT_ENCODING="br;q=1, gzip;q=0.8")
    assert packed.status_code == 200 and packed["Content-Encoding"] == "gzip"
    assert "accept-encoding" in vary(packed) and packed["Content-Type"] == plain["Content-Type"]
    assert int(packed["Content-Length"]) == len(packed.content) < len(plain.content) / 3
    assert gzip.decompress(packed.content) == plain.content
    # The security headers and the request id are on the compressed answer too.
    assert packed["X-Content-Type-Options"] == "nosniff" and packed["X-Request-ID"]
    # A client that does not take gzip gets the plain bytes.
    identity = staff_client.get("/api/v1/users/?page_size=50", HTTP_ACCEPT_ENCODING="identity")
    assert "Content-Encoding" not in identity and identity.content == plain.content


def test_answers_under_1_kb_and_the_admin_pages_leave_as_they_are(staff_client, client) -> None:  # type: ignore[no-untyped-def]
    user = make_user()
    small = staff_client.get(f"/api/v1/users/{user.pk}/", HTTP_ACCEPT_ENCODING="gzip")
    assert small.status_code == 200 and len(small.content) < COMPRESS_MIN_BYTES
    assert "Content-Encoding" not in small and "accept-encoding" not in vary(small)
    assert small["ETag"].startswith('"')  # strong: not compressed
    health = client.get("/health", HTTP_ACCEPT_ENCODING="gzip")
    assert health.status_code == 200 and "Content-Encoding" not in health
    # The admin's login page (HTML with a CSRF token) is over 1 KB and never compressed.
    login = client.get("/admin/login/", HTTP_ACCEPT_ENCODING="gzip")
    assert login.status_code == 200 and len(login.content) >= COMPRESS_MIN_BYTES
    assert "Content-Encoding" not in login and b"csrfmiddlewaretoken" in login.content


def test_a_large_problem_is_compressed_too(staff_client) -> None:
    events = [{"event_type": "", "data": {}} for _ in range(40)]
    plain = staff_client.post("/api/v1/analytics/events/batch/", {"events": events}, format="json")
    assert plain.status_code == 400 and plain["Content-Type"].startswith("application/problem+json")
    assert len(plain.content) >= COMPRESS_MIN_BYTES
    packed = staff_client.post(
        "/api/v1/analytics/events/batch/", {"events": events}, format="json", HTTP_ACCEPT_ENCODING="gzip"
    )
    assert packed.status_code == 400 and packed["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.content) == plain.content


def test_static_files_from_the_service_compressed_whole_never_in_part(client) -> None:  # type: ignore[no-untyped-def]
    """WhiteNoise's file answers (streamed, with a Content-Length): gzipped when the client accepts
    it; a Range request's 206 is left alone (its Content-Range counts the plain bytes)."""
    url = "/static/admin/css/base.css"
    plain = client.get(url)
    assert plain.status_code == 200 and plain.streaming
    content = b"".join(plain.streaming_content)
    assert len(content) >= COMPRESS_MIN_BYTES and "Content-Encoding" not in plain
    packed = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert packed["Content-Encoding"] == "gzip" and "Content-Length" not in packed
    assert gzip.decompress(b"".join(packed.streaming_content)) == content
    part = client.get(url, HTTP_RANGE="bytes=0-99", HTTP_ACCEPT_ENCODING="gzip")
    assert part.status_code == 206 and "Content-Encoding" not in part
    assert b"".join(part.streaming_content) == content[:100]
