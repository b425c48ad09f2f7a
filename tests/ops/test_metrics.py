"""/metrics: access rules, and that each family counts what it claims (exact increments)."""

from __future__ import annotations

import os

import pytest
from django.db import DatabaseError, connections
from django.test import override_settings
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from rest_framework.test import APIClient

from api.metrics import record_degraded
from core import aliases
from tests.api.test_errors import users_db_down  # noqa: F401 - a fixture
from tests.factories import make_user


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@override_settings(METRICS_ENABLED=False)
def test_metrics_are_off_unless_enabled() -> None:
    response = APIClient().get("/metrics")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


@override_settings(METRICS_ENABLED=True, METRICS_TOKEN="")
def test_metrics_enabled_without_token_answer_text_format() -> None:
    response = APIClient().get("/metrics", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST  # text/plain; version=...; charset=utf-8
    text = response.content.decode()
    for family in (
        "switchyard_http_requests_total",
        "switchyard_http_request_duration_seconds",
        "switchyard_db_queries_total",
        "switchyard_degraded_answers_total",
        "switchyard_db_pool_size",
    ):
        assert f"# TYPE {family}" in text


@override_settings(METRICS_ENABLED=True, METRICS_TOKEN="s3cret-for-tests")
@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("Bearer wrong", 401), ("Token s3cret-for-tests", 401), ("Bearer s3cret-for-tests", 200)],
)
def test_metrics_token(header: str | None, status: int) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/metrics")
    assert response.status_code == status
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert response["Content-Type"] == "application/problem+json"


@override_settings(METRICS_ENABLED=True)
def test_requests_are_counted_by_route_method_and_status() -> None:
    before_ok = sample("switchyard_http_requests_total", route="/health", method="GET", status="200")
    before_405 = sample("switchyard_http_requests_total", route="/health", method="POST", status="405")
    before_404 = sample("switchyard_http_requests_total", route="unmatched", method="GET", status="404")
    before_latency = sample("switchyard_http_request_duration_seconds_count", route="/health", method="GET")
    client = APIClient()
    assert client.get("/health").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.post("/health").status_code == 405
    assert client.get("/no/such/page/123").status_code == 404
    assert sample("switchyard_http_requests_total", route="/health", method="GET", status="200") == before_ok + 2
    assert sample("switchyard_http_requests_total", route="/health", method="POST", status="405") == before_405 + 1
    assert sample("switchyard_http_requests_total", route="unmatched", method="GET", status="404") == before_404 + 1
    assert sample("switchyard_http_request_duration_seconds_count", route="/health", method="GET") == before_latency + 2


@override_settings(METRICS_ENABLED=True)
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS], transaction=True)
def test_queries_are_counted_and_timed_per_alias(queries) -> None:  # type: ignore[no-untyped-def]
    ok_before = sample("switchyard_db_queries_total", alias=aliases.USERS, outcome="ok")
    err_before = sample("switchyard_db_queries_total", alias=aliases.USERS, outcome="error")
    timed_before = sample("switchyard_db_query_duration_seconds_count", alias=aliases.USERS)
    with queries(aliases.USERS) as ran:
        make_user()
    with pytest.raises(DatabaseError), connections[aliases.USERS].cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_for_metrics")
    assert len(ran) == 1
    assert sample("switchyard_db_queries_total", alias=aliases.USERS, outcome="ok") == ok_before + 1
    assert sample("switchyard_db_queries_total", alias=aliases.USERS, outcome="error") == err_before + 1
    assert sample("switchyard_db_query_duration_seconds_count", alias=aliases.USERS) == timed_before + 2


@override_settings(METRICS_ENABLED=False)
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS], transaction=True)
def test_nothing_is_counted_while_metrics_are_off() -> None:
    """Off (the default), nothing reads the samples: neither requests nor statements pay for them."""
    requests_before = sample("switchyard_http_requests_total", route="/health", method="GET", status="200")
    queries_before = sample("switchyard_db_queries_total", alias=aliases.USERS, outcome="ok")
    assert APIClient().get("/health").status_code == 200
    make_user()
    assert sample("switchyard_http_requests_total", route="/health", method="GET", status="200") == requests_before
    assert sample("switchyard_db_queries_total", alias=aliases.USERS, outcome="ok") == queries_before


def test_record_degraded_counts_per_alias() -> None:
    before = sample("switchyard_degraded_answers_total", alias=aliases.ANALYTICS)
    record_degraded(aliases.ANALYTICS)
    record_degraded(aliases.ANALYTICS)
    assert sample("switchyard_degraded_answers_total", alias=aliases.ANALYTICS) == before + 2


@pytest.mark.real_engines
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS], transaction=True)
def test_pool_usage_is_exposed_for_pooled_aliases() -> None:
    """With DB_POOL=1 (Django's pool on; the default keeps a connection per thread)."""
    import os

    from tests.factories import djangos_pool

    with djangos_pool(aliases.USERS, max_size=3):
        make_user()
        pid = str(os.getpid())
        size = REGISTRY.get_sample_value("switchyard_db_pool_size", {"alias": aliases.USERS, "pid": pid})
        maximum = REGISTRY.get_sample_value("switchyard_db_pool_max", {"alias": aliases.USERS, "pid": pid})
        available = REGISTRY.get_sample_value("switchyard_db_pool_available", {"alias": aliases.USERS, "pid": pid})
        assert maximum == 3
        assert size >= 1
        assert size - available == 1  # this thread holds one connection of the users_db pool


def test_degraded_answers_are_counted_from_the_answer() -> None:
    from django.test import override_settings
    from django.urls import path
    from rest_framework.decorators import api_view, authentication_classes, permission_classes
    from rest_framework.response import Response

    @api_view(["GET"])
    @authentication_classes([])
    @permission_classes([])
    def degraded_view(request):  # type: ignore[no-untyped-def]
        return Response({"sources": {}, "degraded": [aliases.ANALYTICS, aliases.CACHE]})

    import types

    urlconf = types.ModuleType("degraded_urls")
    urlconf.urlpatterns = [path("degraded-test/", degraded_view)]  # type: ignore[attr-defined]
    before = {
        a: sample("switchyard_degraded_answers_total", alias=a)
        for a in (aliases.ANALYTICS, aliases.CACHE, aliases.USERS)
    }
    with override_settings(ROOT_URLCONF=urlconf, METRICS_ENABLED=True):
        assert APIClient().get("/degraded-test/").status_code == 200
    after = {a: sample("switchyard_degraded_answers_total", alias=a) for a in before}
    assert after == {
        aliases.ANALYTICS: before[aliases.ANALYTICS] + 1,
        aliases.CACHE: before[aliases.CACHE] + 1,
        aliases.USERS: before[aliases.USERS],
    }


def test_multiprocess_mode_without_its_directory_never_breaks_a_query(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A management command run with PROMETHEUS_MULTIPROC_DIR set but no gunicorn to create it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    missing = tmp_path / "not-yet" / "metrics"
    code = (
        "import django; django.setup()\n"
        "import api.metrics\n"
        "from django.db import connections\n"
        "with connections['cache_db'].cursor() as c:\n"
        "    c.execute('SELECT 1')\n"
        "    assert c.fetchone()[0] == 1\n"
        "print(api.metrics.exposition().decode().count('switchyard_db_queries_total{'))\n"
    )
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(missing),
        "METRICS_ENABLED": "1",
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "SWITCHYARD_VAR_DIR": str(tmp_path / "var"),
    }
    env.pop("CACHE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert missing.is_dir()
    assert int(done.stdout.strip().splitlines()[-1]) >= 1


@override_settings(METRICS_ENABLED=True, METRICS_TOKEN="")
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS], transaction=True)
def test_a_database_down_counts_its_503s_and_shows_its_breaker(users_db_down) -> None:  # noqa: F811
    from tests.factories import api_client

    before = sample("switchyard_unavailable_answers_total", alias=aliases.USERS)
    client = api_client()
    for _ in range(2):
        assert client.get("/api/v1/users/").status_code == 503
    assert sample("switchyard_unavailable_answers_total", alias=aliases.USERS) == before + 2
    if connections[aliases.USERS].vendor == "postgresql":  # the breaker guards PostgreSQL's connections
        failing = sample("switchyard_db_breaker_failing", alias=aliases.USERS, pid=str(os.getpid()))
        assert failing == 1.0
