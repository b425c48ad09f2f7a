"""Response headers every answer carries.

- :class:`RequestIDMiddleware`: ``X-Request-ID``. A valid incoming one (1 to 128 characters of
  ``A-Z a-z 0-9 - _ . : / + =``) is echoed; otherwise (absent or invalid) a new UUID4 hex is
  generated. It is also on ``request.request_id`` for logs.
- :class:`ServerTimingMiddleware`: ``Server-Timing`` with one entry per database alias the request
  touched, named exactly by the alias, ``dur`` in milliseconds (``users_db;dur=1.8,
  default_replica_1;dur=0.9``), from ``routers.state.current().timings`` (filled by
  :mod:`core.instrumentation` for every query). It must sit inside
  ``routers.middleware.RoutingStateMiddleware``, which resets that state when the request ends.
- :class:`BodyLimitMiddleware`: a write whose body comes chunked (``Transfer-Encoding`` without
  ``Content-Length``) is a 411 Problem Details: Django reads such a body as empty, which would
  otherwise surface as a misleading 400 ("events: required"). A ``Content-Length`` over the
  endpoint's cap (``MAX_BODY_BYTES``; the events batch ``BATCH_MAX_BODY_BYTES``) is a 413 before
  the body is read.
- :class:`PermanentRedirectSlashMiddleware`: a write (any method but GET/HEAD) under ``/api/`` to a
  path that only exists with a trailing slash is answered ``308 Permanent Redirect`` (method and
  body preserved), not CommonMiddleware's 301 that clients replay as a GET. GETs keep the 301.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from types import SimpleNamespace

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseRedirectBase
from django.urls import Resolver404, is_valid_path, resolve

from routers import state

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:/+=]{1,128}")


def request_id_for(incoming: str | None) -> str:
    if incoming and VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIDMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


def server_timing(timings: dict[str, list[float]]) -> str:
    """``{"users_db": [2, 0.0018]}`` -> ``users_db;dur=1.8`` (entries in the order first touched)."""
    return ", ".join(f"{alias};dur={seconds * 1000:.1f}" for alias, (_count, seconds) in timings.items())


class ServerTimingMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        header = server_timing(state.current().timings)
        if header:
            response["Server-Timing"] = header
        return response


class HttpResponsePermanentRedirectPreservingMethod(HttpResponseRedirectBase):
    status_code = 308


class PermanentRedirectSlashMiddleware:
    """Before ``CommonMiddleware`` (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if request.method not in ("GET", "HEAD") and path.startswith("/api/") and not path.endswith("/"):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf) and is_valid_path(f"{path}/", urlconf):
                return HttpResponsePermanentRedirectPreservingMethod(request.get_full_path(force_append_slash=True))
        return self.get_response(request)


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def body_limit_for(request: HttpRequest) -> int | None:
    """The body cap of the view ``request`` goes to (api.parsers.max_body_bytes of its view class
    and route), or MAX_BODY_BYTES when the path resolves to nothing."""
    from api.parsers import max_body_bytes

    try:
        match = resolve(request.path_info, getattr(request, "urlconf", None))
    except Resolver404:
        return max_body_bytes(None)
    func = match.func
    setting = (getattr(func, "initkwargs", None) or {}).get("max_body_setting") or getattr(
        getattr(func, "cls", None), "max_body_setting", None
    )
    return max_body_bytes(SimpleNamespace(max_body_setting=setting))


class BodyLimitMiddleware:
    """Before anything reads the body (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from api.problems import PROBLEM_CONTENT_TYPE, problem

        meta = request.META
        if request.method in WRITE_METHODS:
            length = meta.get("CONTENT_LENGTH")
            if not length and meta.get("HTTP_TRANSFER_ENCODING", "").strip():
                body = problem(
                    411, "Send the body with a Content-Length header; chunked request bodies are not accepted."
                )
                return JsonResponse(body, status=411, content_type=PROBLEM_CONTENT_TYPE)
            if length and length.isascii() and length.isdigit():
                limit = body_limit_for(request)
                if limit is not None and int(length) > limit:
                    body = problem(413, f"The request body is {int(length)} bytes; at most {limit} are accepted here.")
                    return JsonResponse(body, status=413, content_type=PROBLEM_CONTENT_TYPE)
        return self.get_response(request)
