"""Django's own error views, answering Problem Details (``handler404`` etc.).

Errors raised inside DRF views go through :mod:`api.exceptions`; these cover what happens before a
DRF view runs (an unknown URL, a bad Host header, a crash in middleware), on every path of the
project (``/health/``, ``/api-auth/login/``, ...) except the Django admin, which keeps its HTML pages.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from api.problems import PROBLEM_CONTENT_TYPE, problem

ADMIN_PREFIX = "/admin/"


def _is_api(request: HttpRequest) -> bool:
    """True for every path but the admin's: those answer Problem Details."""
    return not request.path.startswith(ADMIN_PREFIX)


def _problem(status: int, detail: str) -> JsonResponse:
    return JsonResponse(problem(status, detail), status=status, content_type=PROBLEM_CONTENT_TYPE)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _problem(400, "The request could not be understood.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _problem(403, "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _problem(404, f"No resource at {request.path[:200]}.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return _problem(500, "The server failed to answer this request; it has been logged.")
    return defaults.server_error(request)
