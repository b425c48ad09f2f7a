"""Problem Details (RFC 9457): the body of every error answer, and its OpenAPI description.

``problem(...)`` builds the body; :class:`ProblemSerializer` documents it (drf-spectacular names the
component ``Problem``). Every error of the API, whatever raised it, goes through
:func:`api.exceptions.problem_exception_handler` or the Django handlers in :mod:`api.views.errors`,
and both build their body here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from rest_framework import serializers

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:switchyard:problem:"

#: status -> (type slug, title) for the statuses the API answers with.
KNOWN: dict[int, tuple[str, str]] = {
    400: ("invalid-request", "The request is invalid"),
    401: ("not-authenticated", "Authentication required"),
    403: ("permission-denied", "Permission denied"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    411: ("length-required", "Length required"),
    412: ("precondition-failed", "Precondition failed"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    428: ("precondition-required", "Precondition required"),
    429: ("throttled", "Too many requests"),
    500: ("server-error", "Internal server error"),
    503: ("source-unavailable", "A database is unavailable"),
}


def problem_type(status: int, slug: str | None = None) -> str:
    if slug is None:
        slug = KNOWN.get(status, ("error", ""))[0]
    return TYPE_PREFIX + slug


def field_error(field: str | None, code: str, message: str) -> dict[str, Any]:
    return {"field": field, "code": code, "message": message}


def problem(
    status: int,
    detail: str,
    *,
    errors: Iterable[Mapping[str, Any]] = (),
    slug: str | None = None,
    title: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The Problem Details body for ``status``."""
    default_slug, default_title = KNOWN.get(status, ("error", HTTPStatus(status).phrase))
    body: dict[str, Any] = {
        "type": problem_type(status, slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "errors": [dict(e) for e in errors],
    }
    body.update(extensions)
    return body


class ProblemFieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(
        allow_null=True,
        help_text="The input the error is about: a body field (`author_id`, `events[3].event_type`), "
        "a query parameter, or null for the request as a whole.",
    )
    code = serializers.CharField(help_text="Machine-readable reason (`required`, `does_not_exist`, `max_value`, ...).")
    message = serializers.CharField(help_text="Human-readable explanation.")


class ProblemSerializer(serializers.Serializer):
    """An error answer (RFC 9457 Problem Details, `application/problem+json`)."""

    type = serializers.CharField(help_text="A URI naming the kind of problem (`urn:switchyard:problem:not-found`).")
    title = serializers.CharField(help_text="Short summary of the kind of problem.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong with this request.")
    errors = ProblemFieldErrorSerializer(many=True, help_text="One entry per invalid input; may be empty.")
    alias = serializers.CharField(
        required=False, help_text="503 only: the database alias that is unavailable (`users_db`)."
    )
    step = serializers.CharField(
        required=False,
        help_text="Registrations only: the saga step that failed (`create_user`, `create_profile`, `record_event`).",
    )
    required_scope = serializers.CharField(
        required=False, help_text="403 for a missing scope only: the scope the operation needs (`posts:write`)."
    )
