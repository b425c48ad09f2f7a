"""Prometheus metrics at ``GET /metrics``.

What is measured:

- ``switchyard_http_requests_total{route,method,status}`` and
  ``switchyard_http_request_duration_seconds{route,method}`` (histogram), by :func:`record_request`;
  ``route`` is the URL pattern (``/api/v1/users/<int:pk>/``), never the raw path, so the label set
  stays bounded; requests that match no pattern are ``unmatched``.
- ``switchyard_db_queries_total{alias,outcome}`` and ``switchyard_db_query_duration_seconds{alias}``
  (histogram), from every query on every connection (``core.instrumentation.add_listener``).
- ``switchyard_db_pool_{size,available,max,waiting}{alias}``: psycopg pool usage, read at scrape time.
- ``switchyard_degraded_answers_total{alias}``: aggregate answers that left ``alias`` out. The
  request's record counts them from the answer itself (the ``degraded`` list of the API contract), so the
  aggregate code needs no call; :func:`record_degraded` is for answers that do not go through it.

Access: answered only when ``METRICS_ENABLED`` is on (404 otherwise); with ``METRICS_TOKEN`` set,
the scraper must send ``Authorization: Bearer <token>`` (401 otherwise).

Several gunicorn workers: gunicorn.conf.py sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start, so counters and histograms are summed across workers (prometheus_client's multiprocess
mode; https://prometheus.github.io/client_python/multiprocess/). The pool gauges are read live from
the worker that answers the scrape (label ``pid``), since a pool belongs to one process.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import instrumentation

logger = logging.getLogger(__name__)

# Multiprocess mode writes one file per process and metric there: make sure the directory exists
# (a management command run with the image's environment has no gunicorn to create it).
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_QUERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

HTTP_REQUESTS = Counter(
    "switchyard_http_requests_total",
    "HTTP requests answered, by URL pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "switchyard_http_request_duration_seconds",
    "Time to answer an HTTP request, by URL pattern and method.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
)
DB_QUERIES = Counter(
    "switchyard_db_queries_total",
    "SQL statements run, by database alias and outcome (ok/error).",
    ["alias", "outcome"],
)
DB_QUERY_LATENCY = Histogram(
    "switchyard_db_query_duration_seconds",
    "Time of one SQL statement, by database alias.",
    ["alias"],
    buckets=_QUERY_BUCKETS,
)
UNAVAILABLE_ANSWERS = Counter(
    "switchyard_unavailable_answers_total",
    "503 answers that named a database alias (the database was down, or its breaker open).",
    ["alias"],
)
DEGRADED_ANSWERS = Counter(
    "switchyard_degraded_answers_total",
    "Aggregate answers served without a database (listed in `degraded`).",
    ["alias"],
)


def record_degraded(alias: str) -> None:
    """Count one answer that had to leave ``alias`` out (it failed or ran out of time)."""
    DEGRADED_ANSWERS.labels(alias=alias).inc()


#: (alias, failed) -> the labelled counter and histogram: ``labels()`` (a lock and a dict lookup
#: under it) is paid once per alias instead of once per statement.
_query_metrics: dict[tuple[str, bool], tuple[Any, Any]] = {}


def _on_query(alias: str, seconds: float, failed: bool) -> None:
    if not settings.METRICS_ENABLED:  # nothing would read them: not paid per statement
        return
    try:
        children = _query_metrics.get((alias, failed))
        if children is None:
            children = _query_metrics[(alias, failed)] = (
                DB_QUERIES.labels(alias=alias, outcome="error" if failed else "ok"),
                DB_QUERY_LATENCY.labels(alias=alias),
            )
        children[0].inc()
        children[1].observe(seconds)
    except Exception:
        logger.warning("could not record a query metric", exc_info=True)


instrumentation.add_listener(_on_query)


class PoolCollector(Collector):
    """psycopg pool usage per alias of this process, read when scraped."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pid = str(os.getpid())
        families = {
            "pool_size": GaugeMetricFamily(
                "switchyard_db_pool_size", "Connections in the pool (busy + idle).", labels=["alias", "pid"]
            ),
            "pool_available": GaugeMetricFamily(
                "switchyard_db_pool_available", "Idle connections in the pool.", labels=["alias", "pid"]
            ),
            "pool_max": GaugeMetricFamily(
                "switchyard_db_pool_max", "Most connections the pool may open.", labels=["alias", "pid"]
            ),
            "requests_waiting": GaugeMetricFamily(
                "switchyard_db_pool_waiting", "Threads waiting for a connection.", labels=["alias", "pid"]
            ),
        }
        for alias, pool in _pools().items():
            try:
                stats = pool.get_stats()
            except Exception:  # noqa: BLE001, S112 - a closing pool must not break the scrape
                continue
            for key, family in families.items():
                if key in stats:
                    family.add_metric([alias, pid], float(stats[key]))
        yield from families.values()


def _pools() -> dict[str, Any]:
    try:
        from core.db_backends.postgresql.base import pools
    except Exception:  # noqa: BLE001 - psycopg missing: no pools
        return {}
    return pools()


class HealthCollector(Collector):
    """Read when scraped, in the process that answers the scrape: each alias's breaker
    (``switchyard_db_breaker_failing{alias,pid}``, 1 while connections to it fail) and each
    streaming replica's replay lag (``switchyard_replica_lag_seconds{alias}``: 0 when it has
    replayed all it received, else the age of the last transaction it replayed)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from core.db_backends.breaker import failing_aliases

        pid = str(os.getpid())
        breakers = GaugeMetricFamily(
            "switchyard_db_breaker_failing",
            "1 while connections to the alias fail in this process (its breaker refuses or probes).",
            labels=["alias", "pid"],
        )
        for alias, failing in sorted(failing_aliases().items()):
            breakers.add_metric([alias, pid], 1.0 if failing else 0.0)
        yield breakers
        lag = GaugeMetricFamily(
            "switchyard_replica_lag_seconds",
            "Replay lag of each streaming replica, read at scrape time.",
            labels=["alias"],
        )
        for alias, seconds in replica_lags().items():
            lag.add_metric([alias], seconds)
        yield lag


#: The lag of a PostgreSQL standby: 0 when it has replayed everything it received (an idle primary
#: sends nothing, and the age of the last replayed transaction would grow without a lag), else the
#: age of the last transaction replayed. NULL on a server that is not a standby.
_LAG_SQL = (
    "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
    "ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)


def replica_lags() -> dict[str, float]:
    """Each PostgreSQL replica alias that answers, and its lag in seconds (a replica that does not
    answer is left out: its breaker and the 503s say so)."""
    from django.db import connections

    from core.db_config import replicas_of

    lags: dict[str, float] = {}
    for replicas in replicas_of(settings.DATABASES).values():
        for alias in replicas:
            connection = connections[alias]
            if connection.vendor != "postgresql":
                continue
            try:
                with connection.cursor() as cursor:
                    cursor.execute(_LAG_SQL)
                    row = cursor.fetchone()
            except Exception:  # noqa: BLE001, S112 - a replica that is down must not break the scrape
                continue
            if row and row[0] is not None:
                lags[alias] = float(row[0])
    return lags


_pool_collector = PoolCollector()
_health_collector = HealthCollector()
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    REGISTRY.register(_pool_collector)
    REGISTRY.register(_health_collector)


def exposition() -> bytes:
    """The text exposition of every metric (summed across workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_pool_collector)
        registry.register(_health_collector)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def record_request(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
    """Count one answered request and its time (``api.middleware.RequestMiddleware``, with
    ``METRICS_ENABLED`` on); never fails the request."""
    try:
        match = getattr(request, "resolver_match", None)
        route = ("/" + match.route) if match is not None and match.route else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        HTTP_REQUESTS.labels(route=route, method=method, status=str(response.status_code)).inc()
        HTTP_LATENCY.labels(route=route, method=method).observe(seconds)
        data = getattr(response, "data", None)  # DRF answers keep their data
        if response.status_code == 503 and isinstance(data, dict) and isinstance(data.get("alias"), str):
            UNAVAILABLE_ANSWERS.labels(alias=data["alias"]).inc()
        if isinstance(data, dict) and isinstance(data.get("degraded"), list):
            for alias in data["degraded"]:
                if isinstance(alias, str):
                    record_degraded(alias)
    except Exception:
        logger.warning("could not record request metrics", exc_info=True)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# ---------------------------------------------------------------------------------------------
# The endpoint
# ---------------------------------------------------------------------------------------------


class PrometheusTextRenderer(BaseRenderer):
    media_type = CONTENT_TYPE_LATEST.split(";")[0]
    format = "prometheus"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if isinstance(data, bytes):
            return data
        if isinstance(data, str):
            return data.encode()
        return json.dumps(data).encode()  # a Problem Details body


class _AnyAccept(BaseContentNegotiation):
    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


def _problem(status: int, title: str, detail: str) -> Response:
    return Response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, "errors": []},
        status=status,
        content_type="application/problem+json",
    )


class MetricsView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    renderer_classes = [PrometheusTextRenderer]
    content_negotiation_class = _AnyAccept
    throttle_classes: list[Any] = []

    @extend_schema(
        operation_id="metrics",
        summary="Prometheus metrics (text exposition format)",
        description=(
            "Answered when METRICS_ENABLED is on (404 otherwise). With METRICS_TOKEN set, send "
            "`Authorization: Bearer <token>` (401 otherwise)."
        ),
        tags=["operations"],
        auth=[],
        responses={
            (200, "text/plain"): OpenApiResponse(str, description="Prometheus text exposition format."),
            (401, "application/problem+json"): OpenApiResponse(description="Missing or wrong bearer token."),
            (404, "application/problem+json"): OpenApiResponse(description="Metrics are disabled."),
        },
    )
    def get(self, request: Request) -> Response:
        if not settings.METRICS_ENABLED:
            return _problem(404, "Not Found", "metrics are disabled (METRICS_ENABLED)")
        token = settings.METRICS_TOKEN
        if token:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                response = _problem(401, "Unauthorized", "send Authorization: Bearer <METRICS_TOKEN>")
                response["WWW-Authenticate"] = 'Bearer realm="metrics"'
                return response
        response = Response(exposition(), content_type=CONTENT_TYPE_LATEST)
        response["Cache-Control"] = "no-store"
        return response


metrics_view = MetricsView.as_view()
