"""One exception handler for the whole API: every error becomes Problem Details.

Registered as ``REST_FRAMEWORK["EXCEPTION_HANDLER"]``. It answers DRF's own exceptions, the domain
errors of :mod:`core.errors`, Django's ``ValidationError``/``ObjectDoesNotExist``/``Http404``/
``PermissionDenied``/``RequestDataTooBig``, the legacy database's write refusal, and database
errors: a database that is down or refuses connections is a 503 naming its alias, a query stopped
by its statement timeout (``core.errors.QueryTimeout``) a 503 ``query-timeout``; a value the
database refuses (``DataError``) is a 400; a unique constraint hit by a race is a 409.
Anything else is a genuine bug and is left to Django's 500 handler (also Problem Details for
``/api/`` paths, see :mod:`api.views.errors`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from api.problems import PROBLEM_CONTENT_TYPE, field_error, problem
from core import errors as domain
from routers.primary import LegacyWriteForbidden

logger = logging.getLogger(__name__)

#: Methods the legacy resource answers while writes to legacy_db are disabled.
LEGACY_READ_METHODS = "GET, HEAD, OPTIONS"
#: Seconds a caller is asked to wait after a query stopped by its statement timeout.
QUERY_TIMEOUT_RETRY_AFTER = 5


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than the server accepts."
    default_code = "payload_too_large"


def flatten_errors(detail: Any, prefix: str | None = None) -> Iterator[dict[str, Any]]:
    """DRF error details (nested dicts and lists of ``ErrorDetail``) -> ``errors[]`` entries."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a ListSerializer's errors, keyed by item index
                yield from flatten_errors(value, f"{prefix or ''}[{key}]")
                continue
            key = str(key)
            if key in ("non_field_errors", "__all__"):
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else key
            yield from flatten_errors(value, name)
    elif isinstance(detail, list):
        if any(isinstance(item, (dict, list)) for item in detail):
            for index, item in enumerate(detail):
                if not item:
                    continue
                if isinstance(item, (dict, list)):
                    yield from flatten_errors(item, f"{prefix or ''}[{index}]")
                else:
                    yield from flatten_errors(item, prefix)
        else:
            for item in detail:
                yield from flatten_errors(item, prefix)
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield field_error(prefix, str(code), str(detail))


def field_errors_detail(errors: list[dict[str, Any]]) -> str:
    """The ``detail`` of a 400 with field errors: the messages themselves when every error is a
    uniqueness one ("A user with this username already exists."), else a pointer to ``errors``."""
    if errors and all(e["code"] == "unique" for e in errors):
        return " ".join(e["message"] for e in errors)
    return "The request has invalid fields; see errors."


def django_errors(exc: DjangoValidationError) -> list[dict[str, Any]]:
    if hasattr(exc, "error_dict"):
        out = []
        for field, items in exc.error_dict.items():
            name = None if field == "__all__" else field
            for item in items:
                for message in item.messages:
                    out.append(field_error(name, item.code or "invalid", message))
        return out
    return [field_error(None, item.code or "invalid", m) for item in exc.error_list for m in item.messages]


def alias_of(exc: BaseException) -> str | None:
    """The alias of the connection that raised ``exc``, found on the frames it went through."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        found = None
        while tb is not None:
            candidate = tb.tb_frame.f_locals.get("self")
            wrapper = getattr(candidate, "wrapper", None)  # django.db.utils.DatabaseErrorWrapper
            if isinstance(wrapper, BaseDatabaseWrapper):
                found = wrapper.alias
            elif isinstance(candidate, BaseDatabaseWrapper):
                found = candidate.alias
            tb = tb.tb_next
        if found:
            return found
        current = current.__cause__ or current.__context__
    return None


def _respond(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    set_rollback()
    return Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _from_api_exception(exc: exceptions.APIException) -> Response:
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, exceptions.Throttled):
        headers["Retry-After"] = str(max(1, round(exc.wait or 1)))
    status_code = exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        errors = list(flatten_errors(exc.detail))
        return _respond(problem(400, "The request has invalid fields; see errors.", errors=errors), headers)
    if isinstance(exc, exceptions.MethodNotAllowed):
        return _respond(problem(status_code, str(exc.detail)), headers)
    detail = exc.detail
    if isinstance(detail, (dict, list)):
        errors = list(flatten_errors(detail))
        return _respond(problem(status_code, errors[0]["message"] if errors else "Error.", errors=errors), headers)
    code = getattr(detail, "code", None) or exc.default_code
    errors = [field_error(None, str(code), str(detail))] if status_code == 400 else []
    # A missing scope (api.permissions.ScopeRequired) names the scope the operation needs.
    extensions = {"required_scope": exc.required_scope} if getattr(exc, "required_scope", None) else {}
    return _respond(problem(status_code, str(detail), errors=errors, **extensions), headers)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, exceptions.APIException):
        return _from_api_exception(exc)
    if isinstance(exc, Http404):
        return _respond(problem(404, str(exc) or "Not found."))
    if isinstance(exc, PermissionDenied):
        return _respond(problem(403, str(exc) or "You do not have permission to perform this action."))
    if isinstance(exc, RequestDataTooBig):
        return _from_api_exception(PayloadTooLarge())
    if isinstance(exc, domain.NotFound):
        return _respond(problem(404, f"No {exc.what} with id {exc.ident} exists."))
    if isinstance(exc, domain.FieldErrors):
        errors = [field_error(f, code, msg) for f, items in exc.errors.items() for code, msg in items]
        return _respond(problem(400, field_errors_detail(errors), errors=errors))
    # A failed saga step (core.services.saga) also names the step and its database.
    step = {"step": exc.failure.step, "alias": exc.alias} if hasattr(exc, "failure") else {}
    if isinstance(exc, domain.Conflict):
        return _respond(problem(409, str(exc), **step))
    if isinstance(exc, domain.SourceUnavailable):
        return _respond(
            problem(503, f"Database {exc.alias} is {exc.reason}; try again later.", **{"alias": exc.alias, **step}),
            {"Retry-After": "5"},
        )
    if isinstance(exc, domain.QueryTimeout):
        logger.warning("query timeout on %s: %s", exc.alias, exc)
        return _respond(
            problem(
                503,
                f"The query took longer than {exc.milliseconds} ms on {exc.alias} and was stopped; "
                "try again later, or narrow it (fewer or rarer search terms, filters).",
                slug="query-timeout",
                title="The query took too long",
                alias=exc.alias,
            ),
            {"Retry-After": str(QUERY_TIMEOUT_RETRY_AFTER)},
        )
    if isinstance(exc, DjangoValidationError):
        return _respond(problem(400, "The request has invalid fields; see errors.", errors=django_errors(exc)))
    if isinstance(exc, ObjectDoesNotExist):
        return _respond(problem(404, str(exc) or "Not found."))
    if isinstance(exc, LegacyWriteForbidden):
        return _respond(
            problem(405, "The legacy customers database is read-only here; writes are disabled.", slug="read-only"),
            {"Allow": LEGACY_READ_METHODS},
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        alias = alias_of(exc) or "unknown"
        logger.warning("database %s unavailable: %s", alias, exc)
        return _respond(
            problem(503, f"Database {alias} is unavailable; try again later.", alias=alias),
            {"Retry-After": "5"},
        )
    if isinstance(exc, DataError):
        logger.info("value refused by the database: %s", exc)
        return _respond(
            problem(
                400,
                "A value was refused by the database (out of range or not representable).",
                errors=[field_error(None, "invalid", "A value is out of range or not representable.")],
            )
        )
    if isinstance(exc, IntegrityError):
        return _respond(problem(409, "The change conflicts with existing data."))
    if isinstance(exc, OverflowError):
        return _respond(
            problem(
                400, "A number is out of range.", errors=[field_error(None, "max_value", "A number is out of range.")]
            )
        )
    if isinstance(exc, DatabaseError):
        alias = alias_of(exc) or "unknown"
        logger.exception("database error on %s", alias)
    return None
