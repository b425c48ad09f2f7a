"""``Idempotency-Key`` for DRF views: decorate a write method with :func:`idempotent`.

    from api.idempotency import IDEMPOTENCY_PARAMETER, IDEMPOTENCY_RESPONSES, idempotent

    class PostViewSet(...):
        @extend_schema(parameters=[IDEMPOTENCY_PARAMETER], responses={201: ..., **IDEMPOTENCY_RESPONSES})
        @idempotent
        def create(self, request, *args, **kwargs):
            return super().create(request, *args, **kwargs)

Without the header the method runs as usual. With it (see :mod:`core.services.idempotency`):

- first request: runs, and its answer is stored when it ran: a 2xx, or a 4xx given after a
  statement that changes data started (e.g. a saga step refused by a unique index); a 4xx given
  before any write (validation) releases the key, so the corrected request may use it (Stripe's rule);
- same key, same body: the stored status and body are replayed with ``Idempotent-Replayed: true``,
  and nothing runs (no write);
- same key, another body (or another path/method): 422;
- same key while the first request is still running: 409 with ``Retry-After: 1``;
- an answer of 500 or more, or an exception the handler cannot answer, releases the key, so a
  retry runs again.

Keys are scoped per API token (a hash of it), so callers never see each other's answers, and
expire after ``IDEMPOTENCY_TTL_SECONDS``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError, connections
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.request import Request
from rest_framework.response import Response

from api.problems import PROBLEM_CONTENT_TYPE, TYPE_PREFIX, ProblemSerializer
from core import aliases
from core.services import idempotency

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
#: Response headers stored with the answer and replayed.
KEPT_HEADERS = ("Location",)


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A Problem Details answer (RFC 9457), shaped like the rest of the API's errors."""
    body = {"type": TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail, "errors": errors or []}
    body.update(extensions)
    return Response(body, status=status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (1-255 characters, e.g. a UUID) naming this request. A retry with the same key "
        "and the same body gets the first answer again (header `Idempotent-Replayed: true`) without writing; "
        "the same key with another body is a 422; while the first request runs, a 409. Keys are per token "
        "and expire after 24 hours (IDEMPOTENCY_TTL_SECONDS)."
    ),
)

IDEMPOTENCY_RESPONSES = {
    (409, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        ProblemSerializer, description="A request with this Idempotency-Key is still running; retry shortly."
    ),
    (422, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        ProblemSerializer, description="This Idempotency-Key was used with a different request."
    ),
}


def request_scope(request: Request) -> str:
    """One scope per API token (or per account when authenticated otherwise)."""
    token_key = getattr(request.auth, "key", None)
    if token_key:
        return idempotency.scope_for_token(str(token_key))
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return "anonymous"


def _invalid_key(detail: str) -> Response:
    return problem_response(
        400,
        "invalid-request",
        "The request is invalid",
        detail,
        errors=[{"field": HEADER, "code": "invalid", "message": detail}],
    )


def _replay(record: Any) -> Response:
    headers = {name: value for name, value in (record.response_headers or {}).items() if name in KEPT_HEADERS}
    headers[REPLAYED_HEADER] = "true"
    return Response(
        record.response_body,
        status=record.response_status,
        headers=headers,
        content_type=record.response_content_type or None,
    )


_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "COPY", "TRUNCATE")


class WriteWatch:
    """Notes whether any statement that changes data ran on any database inside the block
    (an execute wrapper on every connection of this thread)."""

    def __init__(self) -> None:
        self.wrote = False
        self._stack = contextlib.ExitStack()

    def _wrapper(self, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if not self.wrote and str(sql).lstrip().upper().startswith(_WRITE_VERBS):
            self.wrote = True
        return execute(sql, params, many, context)

    def __enter__(self) -> WriteWatch:
        for connection in connections.all():
            self._stack.enter_context(connection.execute_wrapper(self._wrapper))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def idempotent(method: Callable[..., Response]) -> Callable[..., Response]:
    """Make a DRF view method honour ``Idempotency-Key`` (see the module docstring)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        raw = request.headers.get(HEADER)
        if raw is None:
            return method(self, request, *args, **kwargs)
        key = raw.strip()
        if not key or len(key) > idempotency.MAX_KEY_LENGTH or not key.isprintable():
            return _invalid_key(f"{HEADER} must be 1 to {idempotency.MAX_KEY_LENGTH} printable characters")
        fingerprint = idempotency.fingerprint(method=request.method, path=request.path, body=request.data)
        try:
            claim = idempotency.claim(scope=request_scope(request), key=key, fingerprint=fingerprint)
        except DatabaseError:
            return problem_response(
                503,
                "source-unavailable",
                "A database is unavailable",
                f"database {aliases.DEFAULT} is unreachable: the {HEADER} could not be checked",
                alias=aliases.DEFAULT,
                headers={"Retry-After": "5"},
            )
        if claim.outcome == idempotency.REPLAY:
            return _replay(claim.record)
        if claim.outcome == idempotency.MISMATCH:
            return problem_response(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused with a different request",
                f"{HEADER} {key!r} was first used with another request body (or path); use a new key for a new request",
                errors=[{"field": HEADER, "code": "mismatch", "message": "this key belongs to a different request"}],
            )
        if claim.outcome == idempotency.IN_PROGRESS:
            return problem_response(
                409,
                "idempotency-key-in-progress",
                "Request in progress",
                f"a request with {HEADER} {key!r} is still being processed; retry shortly to get its answer",
                errors=[{"field": HEADER, "code": "in_progress", "message": "the first request has not answered yet"}],
                headers={"Retry-After": "1"},
            )
        watch = WriteWatch()
        try:
            with watch:
                response = method(self, request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - answered by the view's exception handler below
            try:
                response = self.handle_exception(exc)
            except BaseException:
                idempotency.release(claim.record)
                raise
        except BaseException:
            idempotency.release(claim.record)
            raise
        if response.status_code >= 500 or (response.status_code >= 400 and not watch.wrote):
            # A 5xx, or a refusal before anything was written (validation): nothing ran, so the key
            # is released and the corrected request may use it (Stripe's rule).
            idempotency.release(claim.record)
        else:
            idempotency.complete(
                claim.record,
                status=response.status_code,
                body=response.data,
                content_type=response.content_type or "",
                headers={name: response[name] for name in KEPT_HEADERS if response.has_header(name)},
            )
        return response

    return wrapper
