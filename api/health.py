"""Operational probes. ``/health`` is liveness: it answers from the process and touches no database."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "pass"}, content_type="application/health+json")
