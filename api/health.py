"""Operational probes.

``GET /health`` is liveness: it answers from the process and touches no database.

``GET /health/ready`` is readiness: ``SELECT 1`` on every alias in ``settings.DATABASES`` (replicas
included), concurrently, each bounded by ``READINESS_TIMEOUT_SECONDS``. The answer is
``application/health+json`` in the format of draft-inadarei-api-health-check
(https://datatracker.ietf.org/doc/html/draft-inadarei-api-health-check-06): one entry per alias
under ``checks`` (key ``<alias>:responseTime``) with ``status``, ``time`` (when it was observed),
``time_ms`` / ``observedValue`` (how long the round trip took) and ``output`` on failure.

- An alias listed in ``READINESS_REQUIRED_ALIASES`` that fails is ``fail`` and makes the answer
  ``fail`` with status 503; any other alias that fails is ``warn`` (the answer stays 200).
- A hung database cannot hang the probe. Each check runs in its own daemon thread on a fresh,
  unpooled connection opened with a connect timeout and a server-side statement timeout
  (PostgreSQL ``statement_timeout``, MySQL ``read_timeout``/``write_timeout``, SQLite ``timeout``);
  the probe waits for all of them until one deadline and reports any thread still running as
  ``timed out``. While a check of an alias is still stuck, later probes do not start another one
  for it (they report it as still timed out), so a dead database cannot pile up threads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.renderers import JSONRenderer
from core.db_backends import fresh

HEALTH_MEDIA_TYPE = "application/health+json"
#: The statuses of draft-inadarei-api-health-check (named OpsHealthStatusEnum in the schema).
HEALTH_STATUSES = ["pass", "warn", "fail"]

logger = logging.getLogger(__name__)


class HealthJSONRenderer(JSONRenderer):
    media_type = HEALTH_MEDIA_TYPE
    format = "health+json"


class HealthContentNegotiation(BaseContentNegotiation):
    """Probes answer ``application/health+json`` whatever the client's ``Accept`` says."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        return (renderers[0], renderers[0].media_type)


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    alias: str
    ok: bool
    seconds: float
    observed_at: dt.datetime
    output: str = ""


_inflight_lock = threading.Lock()
#: alias -> monotonic start of a check thread that has not finished yet
_inflight: dict[str, float] = {}


_REASONS = (
    (("refused", "could not connect", "can't connect", "is unavailable", "connection failed"), "connection refused"),
    (("timeout", "timed out", "canceling statement"), "timed out"),
    (("authentication", "password", "access denied"), "authentication failed"),
    (("does not exist", "unknown database", "unable to open database"), "database missing"),
    (("recovery", "starting up", "shutting down"), "not accepting queries"),
)


def public_reason(exc: BaseException) -> str:
    """A short, address-free description of why a check failed."""
    text = str(exc).lower()
    for signs, reason in _REASONS:
        if any(sign in text for sign in signs):
            return reason
    return "query failed"


def check_alias(alias: str, timeout: float) -> CheckResult:
    """``SELECT 1`` on a fresh connection to ``alias``; never raises."""
    observed_at = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    try:
        row = fresh.select_one(alias, timeout, configured=True)
        if not row or row[0] != 1:
            raise RuntimeError(f"SELECT 1 answered {row!r}")
        return CheckResult(alias, True, time.perf_counter() - started, observed_at)
    except Exception as exc:  # noqa: BLE001 - any failure is the probe's answer, not an error of the probe
        message = " ".join(str(exc).split())[:300] or type(exc).__name__
        # The probe answers without authentication: say what kind of failure it was, never where
        # the database lives (hosts, ports, names); the whole message goes to the log.
        logger.warning("readiness: %s failed: %s: %s", alias, type(exc).__name__, message)
        return CheckResult(alias, False, time.perf_counter() - started, observed_at, public_reason(exc))


def run_checks(aliases: list[str] | None = None, timeout: float | None = None) -> list[CheckResult]:
    """Check every alias concurrently; return within ``timeout`` (plus thread start-up)."""
    timeout = settings.READINESS_TIMEOUT_SECONDS if timeout is None else timeout
    aliases = list(settings.DATABASES) if aliases is None else aliases
    observed_at = dt.datetime.now(dt.UTC)
    results: dict[str, CheckResult] = {}
    results_lock = threading.Lock()
    threads: list[tuple[str, threading.Thread]] = []
    stuck: dict[str, float] = {}

    def worker(alias: str) -> None:
        try:
            result = check_alias(alias, timeout)
            with results_lock:
                results[alias] = result
        finally:
            with _inflight_lock:
                _inflight.pop(alias, None)

    now = time.monotonic()
    for alias in aliases:
        with _inflight_lock:
            if alias in _inflight:
                stuck[alias] = now - _inflight[alias]
                continue
            _inflight[alias] = now
        thread = threading.Thread(target=worker, args=(alias,), name=f"readiness-{alias}", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            with _inflight_lock:
                _inflight.pop(alias, None)
            raise
        threads.append((alias, thread))

    deadline = time.monotonic() + timeout
    for _alias, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))

    out: list[CheckResult] = []
    with results_lock:
        for alias in aliases:
            if alias in results:
                out.append(results[alias])
            elif alias in stuck:
                out.append(
                    CheckResult(
                        alias,
                        False,
                        0.0,
                        observed_at,
                        f"timed out: the previous check is still waiting after {stuck[alias]:.1f}s",
                    )
                )
            else:
                out.append(CheckResult(alias, False, timeout, observed_at, f"timed out after {timeout:g}s"))
    return out


def readiness_document(results: list[CheckResult]) -> tuple[int, dict[str, Any]]:
    """The health+json body and HTTP status for ``results``."""
    required = set(settings.READINESS_REQUIRED_ALIASES)
    checks: dict[str, list[dict[str, Any]]] = {}
    failed_required: list[str] = []
    warned: list[str] = []
    for result in results:
        is_required = result.alias in required
        if result.ok:
            status = "pass"
        elif is_required:
            status = "fail"
            failed_required.append(result.alias)
        else:
            status = "warn"
            warned.append(result.alias)
        millis = round(result.seconds * 1000, 2)
        entry: dict[str, Any] = {
            "componentId": result.alias,
            "componentType": "datastore",
            "observedValue": millis,
            "observedUnit": "ms",
            "status": status,
            "time": result.observed_at.isoformat().replace("+00:00", "Z"),
            "time_ms": millis,
            "required": is_required,
        }
        if result.output:
            entry["output"] = result.output
        checks[f"{result.alias}:responseTime"] = [entry]
    if failed_required:
        overall, http_status = "fail", 503
        notes = [f"required database(s) down: {', '.join(failed_required)}"]
    elif warned:
        overall, http_status = "warn", 200
        notes = []
    else:
        overall, http_status = "pass", 200
        notes = []
    if warned:
        notes.append(f"optional database(s) down: {', '.join(warned)}")
    body: dict[str, Any] = {
        "status": overall,
        "serviceId": "switchyard",
        "description": "readiness: SELECT 1 on every database alias",
        "checks": checks,
    }
    if notes:
        body["notes"] = notes
        body["output"] = "; ".join(notes)
    return http_status, body


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------

_CHECK_ENTRY = inline_serializer(
    "OpsHealthCheckEntry",
    fields={
        "componentId": serializers.CharField(help_text="The database alias."),
        "componentType": serializers.CharField(),
        "observedValue": serializers.FloatField(help_text="Round trip of SELECT 1, in ms."),
        "observedUnit": serializers.CharField(),
        "status": serializers.ChoiceField(choices=HEALTH_STATUSES),
        "time": serializers.DateTimeField(help_text="When the check ran."),
        "time_ms": serializers.FloatField(help_text="Same as observedValue."),
        "required": serializers.BooleanField(help_text="Whether a failure makes the service unready."),
        "output": serializers.CharField(required=False, help_text="Why the check failed."),
    },
)
_READINESS_BODY = inline_serializer(
    "OpsReadiness",
    fields={
        "status": serializers.ChoiceField(choices=HEALTH_STATUSES),
        "serviceId": serializers.CharField(),
        "description": serializers.CharField(),
        "checks": serializers.DictField(
            child=serializers.ListField(child=_CHECK_ENTRY),
            help_text="One entry per alias, keyed `<alias>:responseTime`.",
        ),
        "notes": serializers.ListField(child=serializers.CharField(), required=False),
        "output": serializers.CharField(required=False),
    },
)
_LIVENESS_BODY = inline_serializer("OpsLiveness", fields={"status": serializers.ChoiceField(choices=HEALTH_STATUSES)})


class _ProbeView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    renderer_classes = [HealthJSONRenderer]
    content_negotiation_class = HealthContentNegotiation
    throttle_classes: list[Any] = []

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


class LivenessView(_ProbeView):
    @extend_schema(
        operation_id="health_liveness",
        summary="Liveness: the process answers (touches no database)",
        tags=["operations"],
        auth=[],
        responses={(200, HEALTH_MEDIA_TYPE): _LIVENESS_BODY},
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "pass"})


class ReadinessView(_ProbeView):
    @extend_schema(
        operation_id="health_readiness",
        summary="Readiness: SELECT 1 on every database alias, each with a short timeout",
        description=(
            "application/health+json (draft-inadarei-api-health-check). 200 when every alias in "
            "READINESS_REQUIRED_ALIASES passes (others may be `warn`), 503 otherwise."
        ),
        tags=["operations"],
        auth=[],
        responses={
            (200, HEALTH_MEDIA_TYPE): OpenApiResponse(_READINESS_BODY, description="Ready (pass or warn)."),
            (503, HEALTH_MEDIA_TYPE): OpenApiResponse(_READINESS_BODY, description="A required database is down."),
        },
        examples=[
            OpenApiExample(
                "ready",
                value={
                    "status": "pass",
                    "serviceId": "switchyard",
                    "description": "readiness: SELECT 1 on every database alias",
                    "checks": {
                        "default:responseTime": [
                            {
                                "componentId": "default",
                                "componentType": "datastore",
                                "observedValue": 1.4,
                                "observedUnit": "ms",
                                "status": "pass",
                                "time": "2026-11-25T12:00:00Z",
                                "time_ms": 1.4,
                                "required": True,
                            }
                        ],
                    },
                },
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def get(self, request: Request) -> Response:
        http_status, body = readiness_document(run_checks())
        return Response(body, status=http_status)


liveness = LivenessView.as_view()
readiness = ReadinessView.as_view()
