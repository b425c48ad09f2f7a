"""The project's drf-spectacular ``AutoSchema``: every ``/api/v1/`` operation documents its errors.

Each operation gets Problem Details responses (``application/problem+json``, component
``Problem``) for the errors it can produce, unless the view already documents that status:

- 400 (invalid body or query parameters), 406, 503 (a database unavailable; on lists also a query
  stopped by its statement timeout): always;
- 401 when the view needs authentication, 403 when it has a permission beyond that;
- 404 on routes with a path parameter and on page-numbered lists (a page past the end);
- 413 and 415 on operations with a request body;
- 429 when the view is throttled.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticated

from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer

API_PREFIX = "/api/v1/"


class JSONObjectFieldExtension(OpenApiSerializerFieldExtension):
    """``api.serializers.fields.JSONObjectField``: an object with its configured bounds, read when
    the schema is made: ``maxProperties``, and the two JSON Schema has no keyword for,
    ``x-max-depth`` (levels, the object itself being 1) and ``x-max-bytes`` (as the API writes it)."""

    target_class = "api.serializers.fields.JSONObjectField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "additionalProperties": {}}
        names = {"max_properties": "maxProperties", "max_depth": "x-max-depth", "max_bytes": "x-max-bytes"}
        for bound, value in self.target.bounds().items():
            if value is not None:
                schema[names[bound]] = value
        return schema


DESCRIPTIONS = {
    400: "Invalid input: malformed JSON, wrong types, out-of-range numbers, unknown query parameters or "
    "filter values; `errors[]` names each field.",
    401: "No token, or an invalid one (`WWW-Authenticate: Token`); each failed authentication counts against "
    "the client address's budget (`RateLimit`).",
    403: "The token lacks a scope this operation needs (`required_scope` names it), or it is bound to a user "
    "and the object or the user id given is another's.",
    404: "No such object (or page).",
    406: "The `Accept` header asks for something other than JSON.",
    413: "The body is larger than the server accepts.",
    415: "The body is not `application/json`.",
    429: "Too many requests for this token, or too many failed authentications from this address; retry "
    "after `Retry-After` seconds (`RateLimit` says `r=0`).",
    503: "A database this answer needs is unavailable; `alias` names it.",
}
#: A list's 503 may also be its query stopped by the statement timeout (core.statement_timeout).
LIST_503 = (
    "A database this answer needs is unavailable (`urn:switchyard:problem:source-unavailable`), or the "
    "list's query ran past `LIST_STATEMENT_TIMEOUT_MS` and was stopped (`urn:switchyard:problem:query-timeout`); "
    "`alias` names the database; retry after `Retry-After` seconds."
)


def problem_response(status: int, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(ProblemSerializer, description=description or DESCRIPTIONS[status])


def scopes_of(view: Any, method: str) -> tuple[str, ...]:
    """The scopes an operation needs, as the permission checks them (api.permissions)."""
    from api.permissions import HasScope, required_scopes

    permissions = view.get_permissions() if hasattr(view, "get_permissions") else []
    if not any(isinstance(p, HasScope) for p in permissions):
        return ()
    return required_scopes(view, method)


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> Any:
        """Each ``/api/v1/`` operation states its scopes: ``x-required-scopes``, the write scopes that
        also allow a read (``x-read-implied-by``) and a line of its description with the rule
        (api.permissions). An operation that names none fails the schema (and so the suite)."""
        operation = super().get_operation(*args, **kwargs)
        if operation is None or not self.path.startswith(API_PREFIX):
            return operation
        scopes = scopes_of(self.view, self.method)
        if not scopes:
            raise ValueError(f"{self.method} {self.path} names no scope (api.permissions): give its view a write_scope")
        from api.permissions import read_implied_by, scope_statement

        line = scope_statement(self.view, self.method)
        description = operation.get("description") or ""
        operation["description"] = f"{description}\n\n{line}" if description else line
        operation["x-required-scopes"] = list(scopes)
        # The write scopes that allow this read as well, each on its own (empty for writes).
        operation["x-read-implied-by"] = list(read_implied_by(self.view, self.method))
        return operation

    def _error_statuses(self) -> list[int]:
        view = self.view
        statuses = [400, 406, 503]
        permissions = [type(p) for p in view.get_permissions()] if hasattr(view, "get_permissions") else []
        if not all(p is AllowAny for p in permissions):
            statuses.append(401)
        if any(p not in (AllowAny, IsAuthenticated) for p in permissions):
            statuses.append(403)
        paginator = self._get_paginator() if self._is_list_view() else None
        if "{" in self.path or isinstance(paginator, PageNumberPagination):
            statuses.append(404)
        if self.method in ("POST", "PUT", "PATCH"):
            statuses += [413, 415]
        if getattr(view, "throttle_classes", None):
            statuses.append(429)
        return sorted(statuses)

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self.path.startswith(API_PREFIX):
            return responses
        for status in self._error_statuses():
            if str(status) not in responses:
                description = LIST_503 if status == 503 and self._is_list_view() else None
                responses[str(status)] = self._get_response_for_code(
                    problem_response(status, description), str(status), [PROBLEM_CONTENT_TYPE], direction
                )
        return responses
