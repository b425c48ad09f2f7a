"""The API docs pages (Swagger UI, ReDoc), served from this server only.

The assets come from drf-spectacular-sidecar (no CDN), and a Content-Security-Policy keeps the
pages from loading anything from elsewhere: ReDoc's bundle, for one, always asks a CDN for a
logo, which the policy blocks before it leaves the browser.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from api.problems import PROBLEM_CONTENT_TYPE

DOCS_CSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'self'"


class SchemaView(SpectacularAPIView):
    """``/api/schema/`` (YAML, ``?format=json``). An error before a format was agreed on (an
    unknown ``?format=xml``: 404, an ``Accept`` it cannot serve: 406) is Problem Details in JSON,
    not a problem+json header over a YAML body."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        if force:  # DRF asks with force=True only to render an error whose negotiation failed
            return JSONRenderer(), PROBLEM_CONTENT_TYPE
        return super().perform_content_negotiation(request, force)


class SwaggerDocsView(SpectacularSwaggerView):
    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response


class RedocDocsView(SpectacularRedocView):
    template_name = "api/redoc.html"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response
