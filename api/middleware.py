"""The middleware of the service (core/settings.py ``MIDDLEWARE``; what each costs: bench/README.md).

- :class:`RequestMiddleware`, outermost, is the one frame every request runs in:

  - ``X-Request-ID``: a valid incoming one (1 to 128 characters of ``A-Z a-z 0-9 - _ . : / + =``)
    is echoed, otherwise a new UUID4 hex; also in the logs' context (``core.logging.request_id_var``,
    nothing set on Django's request object), so every log line of the request carries it;
  - the routing state (``routers.middleware.serve``: a fresh state, the client's replica pin, a
    second attempt when a replica vanished under a safe request, the pin cookie after a write);
  - ``Server-Timing``: one entry per database alias the request touched, named exactly by the
    alias, ``dur`` in milliseconds (``users_db;dur=1.8, default_replica_1;dur=0.9``), from the
    state's ``timings`` (filled by :mod:`core.instrumentation` for every query);
  - ``RateLimit-Policy`` and ``RateLimit``: what the last throttle that counted the request
    left of its budget (``api.throttling.counted``, a context variable reset here);
  - the access facts for the access line (``core.logging.leave_access_facts``);
  - Prometheus counters when ``METRICS_ENABLED`` is on (``api.metrics.record_request``).

  These were five middlewares (request id, routing state, Server-Timing, log context, metrics);
  one frame does the same work once.
- :class:`AdminSessionMiddleware`: Django's session, authentication and message middlewares, run
  only for the admin's pages (``/admin/``), the only pages with a signed-in account: the API
  authenticates every request by its token and keeps no session. Django's system checks look for
  those three in ``MIDDLEWARE`` (admin.E408, E409, E410); they are silenced in the settings for
  this reason. ``CsrfViewMiddleware`` stays in the stack (DRF's views are exempt from it).
- :class:`BodyLimitMiddleware`: a write whose body comes chunked (``Transfer-Encoding`` without
  ``Content-Length``) is a 411 Problem Details: Django reads such a body as empty, which would
  otherwise surface as a misleading 400 ("events: required"). A ``Content-Length`` over the
  endpoint's cap (``MAX_BODY_BYTES``; the events batch ``BATCH_MAX_BODY_BYTES``) is a 413 before
  the body is read.
- :class:`CompressionMiddleware`: Django's ``GZipMiddleware`` for answers of at least
  :data:`COMPRESS_MIN_BYTES` (1 KB) of a text-like type (:data:`COMPRESSIBLE_TYPES`, the same list
  as nginx's ``gzip_types``), never for the admin's pages (BREACH, docs/security.md). It adds
  ``Vary: Accept-Encoding`` to every answer it could compress, compresses when the client accepts
  gzip, and weakens a strong ``ETag`` (``W/"..."``) as RFC 9110 asks of a changed encoding
  (api/conditional.py accepts either form back). Behind nginx the proxy drops ``Accept-Encoding``
  and compresses itself, so the work is done once, outside gunicorn's threads.
- :class:`RefusedKeyMiddleware`, innermost: a key this process remembers as refused is answered
  before DRF builds its request, with DRF's own 401 (or the 429 of a spent failure budget), the
  budget charged as DRF's path charges it (docs/security.md).
- :class:`PermanentRedirectSlashMiddleware`: a write (any method but GET/HEAD) under ``/api/`` to a
  path that only exists with a trailing slash is answered ``308 Permanent Redirect`` (method and
  body preserved), not CommonMiddleware's 301 that clients replay as a GET. GETs keep the 301.
"""

from __future__ import annotations

import functools
import gc
import re
import threading
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseRedirectBase
from django.middleware.gzip import GZipMiddleware
from django.urls import Resolver404, is_valid_path, resolve
from rest_framework import exceptions
from rest_framework.views import APIView

from api import authentication, throttling
from api.metrics import record_request
from core.logging import leave_access_facts, request_id_var
from routers import middleware as routing

REQUEST_ID_HEADER = "X-Request-ID"
#: The admin's pages (core/urls.py), the only ones with sessions.
ADMIN_PREFIX = "/admin/"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:/+=]{1,128}")


def request_id_for(incoming: str | None) -> str:
    if incoming and VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestMiddleware:
    """The frame of every request, outermost (module doc): request id, routing state, Server-Timing,
    log context and access facts, metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_for(request.META.get("HTTP_X_REQUEST_ID"))
        token = request_id_var.set(request_id)
        quota_mark = throttling.counted.set(None)
        charged_mark = throttling.charged.set(None)
        try:
            response, routed = routing.serve(request, self.get_response)
            response[REQUEST_ID_HEADER] = request_id
            if routed.timings:
                response["Server-Timing"] = server_timing(routed.timings)
            quota = throttling.counted.get()
            if quota is not None:
                response["RateLimit-Policy"], response["RateLimit"] = throttling.rate_limit_headers(quota)
            leave_access_facts(request, response, routed.timings, started)
            if settings.METRICS_ENABLED:
                record_request(request, response, time.perf_counter() - started)
            large_answers.note(response)
            return response
        finally:
            throttling.charged.reset(charged_mark)
            throttling.counted.reset(quota_mark)
            request_id_var.reset(token)


#: An answer this large or larger counts towards :class:`LargeAnswers`' budget.
LARGE_ANSWER_BYTES = 1024 * 1024


class LargeAnswers:
    """A full garbage collection once the large answers of this process since the last one add up
    to ``LARGE_ANSWER_GC_BYTES`` (0: never).

    A DRF answer ends in reference cycles (the view holds its response, the response's
    ``renderer_context`` holds the view and the response itself), so what it holds, the page's
    rows and the rendered body, is freed only by Python's cyclic collector, not when the answer has
    been sent. Its objects outlive the young collections of the request and land in the oldest
    generation, which Python collects rarely: a worker serving pages of several megabytes grows by
    hundreds of megabytes and keeps them (bench/README.md, "List answer size and worker memory").
    Counting large answers (by ``Content-Length``, which CommonMiddleware sets on every
    non-streaming answer) and collecting when their sum passes the budget bounds that growth to
    about the budget, at the cost of one full collection per budget's worth of large answers;
    small answers never pay it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending = 0
        self.collections = 0

    def note(self, response: HttpResponse) -> None:
        budget = settings.LARGE_ANSWER_GC_BYTES
        if not budget or response.streaming:
            return
        try:
            size = int(response.get("Content-Length") or 0)
        except ValueError:
            return
        if size < LARGE_ANSWER_BYTES:
            return
        with self.lock:
            self.pending += size
            if self.pending < budget:
                return
            self.pending = 0
            self.collections += 1
        gc.collect()


large_answers = LargeAnswers()


def server_timing(timings: dict[str, list[float]]) -> str:
    """``{"users_db": [2, 0.0018]}`` -> ``users_db;dur=1.8`` (entries in the order first touched)."""
    return ", ".join(f"{alias};dur={seconds * 1000:.1f}" for alias, (_count, seconds) in timings.items())


class AdminSessionMiddleware:
    """Sessions, the signed-in account and messages for the admin's pages only (module doc)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        admin = get_response
        for layer in (MessageMiddleware, AuthenticationMiddleware, SessionMiddleware):  # innermost first
            admin = layer(admin)
        self.admin = admin

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(ADMIN_PREFIX):
            return self.admin(request)
        return self.get_response(request)


#: Smaller answers leave as they are (the gzip header and a Vary are not worth it).
COMPRESS_MIN_BYTES = 1024
#: Media types worth compressing (docker/nginx/switchyard.conf.template ``gzip_types``, plus text/html
#: which nginx always compresses).
COMPRESSIBLE_TYPES = frozenset(
    {
        "application/json",
        "application/problem+json",
        "application/javascript",
        "application/xml",
        "application/vnd.oai.openapi",
        "application/vnd.oai.openapi+json",
        "image/svg+xml",
    }
)


def compressible(request: HttpRequest, response: HttpResponse) -> bool:
    """True when ``response`` is worth compressing (module doc, :class:`CompressionMiddleware`)."""
    if request.path_info.startswith(ADMIN_PREFIX) or response.has_header("Content-Range"):
        return False  # the admin (BREACH); a part of a file (206: its ranges count the plain bytes)
    media_type = response.get("Content-Type", "").partition(";")[0].strip().lower()
    if not (media_type.startswith("text/") or media_type in COMPRESSIBLE_TYPES):
        return False
    if response.streaming:
        length = response.get("Content-Length", "")
        return length.isdigit() and int(length) >= COMPRESS_MIN_BYTES
    return len(response.content) >= COMPRESS_MIN_BYTES


class CompressionMiddleware(GZipMiddleware):
    """gzip for answers of 1 KB and more (see the module docstring)."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if not compressible(request, response):
            return response
        return super().process_response(request, response)


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


def _view_setting(view_func: Any, name: str) -> Any:
    """A DRF view's setting as its instances see it: the ``as_view()`` argument, else the class's."""
    initkwargs = view_func.initkwargs
    return initkwargs[name] if name in initkwargs else getattr(view_func.cls, name)


@functools.cache
def allow_header(view_func: Any) -> str:
    """The ``Allow`` field DRF writes on the answers of ``view_func`` (``APIView.allowed_methods``):
    the methods it has a handler for, in ``http_method_names`` order; HEAD wherever GET is; a
    viewset's handlers are its action map's."""
    names = _view_setting(view_func, "http_method_names")
    handlers = set(getattr(view_func, "actions", None) or ()) | {m for m in names if hasattr(view_func.cls, m)}
    if "get" in handlers:
        handlers.add("head")
    return ", ".join(m.upper() for m in names if m in handlers)


@functools.cache
def answers_refusals_early(view_func: Any) -> bool:
    """Whether :class:`RefusedKeyMiddleware` may answer for ``view_func``: a DRF view whose first
    authentication is the API's token one (the one that refuses a key) and whose only renderer is
    the API's JSON one (what a refusal is written with)."""
    from api.renderers import JSONRenderer

    cls = getattr(view_func, "cls", None)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, APIView):
        return False
    authenticators = list(_view_setting(view_func, "authentication_classes"))
    renderers = list(_view_setting(view_func, "renderer_classes"))
    return (
        bool(authenticators)
        and issubclass(authenticators[0], authentication.ScopedTokenAuthentication)
        and renderers == [JSONRenderer]
    )


class RefusedKeyMiddleware:
    """Innermost: a key this process remembers as refused (``api.authentication``) is answered
    here, before DRF makes its request, with the answer DRF would give: the 401 Problem Details
    with ``WWW-Authenticate: Token`` and ``Allow``, or the 429 once the address's failure budget
    is spent; the budget is charged as DRF's path charges it, and the ``RateLimit`` fields say
    what is left of it. Only for requests DRF would answer that way: a token header of ASCII, a
    view under the token authentication with the JSON renderer only, and the common negotiation
    (no ``Accept``, ``*/*`` or ``application/json``; no ``format``). Anything else, or a key not
    remembered, goes on to the view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        meta = request.META
        header = meta.get("HTTP_AUTHORIZATION")
        if not header or not header.isascii() or "format" in view_kwargs:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "token":
            return None
        if meta.get("HTTP_ACCEPT") not in (None, "*/*", "application/json"):
            return None
        override = settings.REST_FRAMEWORK.get("URL_FORMAT_OVERRIDE", "format")
        if override and override in meta.get("QUERY_STRING", ""):
            return None
        if not answers_refusals_early(view_func):
            return None
        refusal = authentication.refused_early(parts[1], request)
        if refusal is None:
            return None
        if refusal.charged is not None:
            wait = None if refusal.charged[0] else refusal.charged[1]
        else:
            wait = throttling.AuthFailureThrottle(request).failed()
        return refusal_answer(refusal if wait is None else exceptions.Throttled(wait), allow_header(view_func))


def refusal_answer(exc: exceptions.APIException, allow: str) -> HttpResponse:
    """What DRF answers for ``exc`` (the token authentication's 401, or the 429 of a spent failure
    budget): the body the API's exception handler writes for it (``api.exceptions``: the detail,
    no errors; ``Retry-After`` on a 429) and the headers ``APIView`` adds (``WWW-Authenticate`` on
    a 401, ``Allow``). Built here, without a DRF response (and the handler's walk over every
    database connection to mark none for rollback: nothing was opened); tests/api/test_refused_early.py
    compares the two on every operation."""
    from api.problems import PROBLEM_CONTENT_TYPE, problem
    from api.renderers import dumps

    status = exc.status_code
    response = HttpResponse(dumps(problem(status, str(exc.detail))), status=status, content_type=PROBLEM_CONTENT_TYPE)
    if isinstance(exc, exceptions.Throttled):
        response["Retry-After"] = str(max(1, round(exc.wait or 1)))
    else:
        response["WWW-Authenticate"] = authentication.ScopedTokenAuthentication.keyword
    response["Allow"] = allow
    return response
