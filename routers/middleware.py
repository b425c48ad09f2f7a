"""Request boundary for routing state (:func:`serve`, called by ``api.middleware.RequestMiddleware``).

Every request starts with a fresh :class:`routers.state.RoutingState` (so nothing leaks between
requests or threads) and reads the client's pin: a cookie (``REPLICA_PIN_COOKIE``) or a header
(``REPLICA_PIN_HEADER``) carrying ``alias,alias|<expiry unix time>``. When the request wrote to a
primary that has replicas, the response sets the cookie for ``REPLICA_PIN_SECONDS`` so that the
client's next reads see its own writes even while the replicas lag.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, RawPostDataException

from core import aliases
from routers import health, primary, state


def parse_pin(raw: str | None, now: float) -> dict[str, float]:
    """``"users_db,default|1764070000.5"`` -> ``{"users_db": 1764070000.5, ...}`` (expired: empty)."""
    if not raw:
        return {}
    names, _, expiry = raw.partition("|")
    try:
        until = float(expiry)
    except ValueError:
        return {}
    # A client cannot pin for longer than the configured window.
    until = min(until, now + settings.REPLICA_PIN_SECONDS)
    if until <= now:
        return {}
    return {name: until for name in names.split(",") if name in aliases.PRIMARIES}


#: Requests that may always be answered a second time when a replica failed under the first attempt.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def lost_a_replica(request: HttpRequest, attempt: state.RoutingState, response: HttpResponse) -> bool:
    """True when ``response`` failed because a replica it read from went away, and answering the
    request again cannot repeat anything: a safe method, or no write routed and the body still
    readable (e.g. the token lookup on a replica failed before the view parsed anything)."""
    if response.status_code < 500:
        return False
    if request.method not in SAFE_METHODS and (attempt.written or not _body_kept(request)):
        return False
    if attempt.failed_replicas:
        return True
    # The replica may have failed while connecting (no query ran): ask it directly.
    used = {alias for alias in attempt.replica_choice.values() if aliases.primary_of(alias) != alias}
    return any(not health.probe(alias) for alias in used)


def _body_kept(request: HttpRequest) -> bool:
    """True when the request's body can be read again by a second attempt: ``request.body`` (public)
    reads and keeps it unless the stream was already consumed (``RawPostDataException``); DRF then
    parses the kept copy."""
    try:
        request.body  # noqa: B018 - read and kept for the second attempt
    except RawPostDataException:
        return False
    return True


def format_pin(primaries: set[str], until: float) -> str:
    return f"{','.join(sorted(primaries))}|{until:.3f}"


def serve(
    request: HttpRequest, get_response: Callable[[HttpRequest], HttpResponse]
) -> tuple[HttpResponse, state.RoutingState]:
    """``get_response(request)`` under a fresh routing state (module doc): the response, and the
    state it ran under (ended, its ``timings`` kept for the Server-Timing header and the logs).
    Called by ``api.middleware.RequestMiddleware`` for every request."""
    now = time.time()
    fresh = state.RoutingState()
    raw = request.COOKIES.get(settings.REPLICA_PIN_COOKIE) or request.headers.get(settings.REPLICA_PIN_HEADER)
    fresh.pinned_until = parse_pin(raw, now)
    token = state.begin(fresh)
    try:
        response = get_response(request)
        if lost_a_replica(request, fresh, response):
            # A replica went away under this request: it is now marked failed, so a second
            # attempt with a fresh state reads from the primary (or another replica).
            state.end(token)
            fresh = state.RoutingState(pinned_until=fresh.pinned_until)
            token = state.begin(fresh)
            response = get_response(request)
        written = {alias for alias in fresh.written if primary.replicas_of(alias)}
        if written and settings.REPLICA_PIN_SECONDS > 0:
            pinned = written | {a for a, until in fresh.pinned_until.items() if until > now}
            until = time.time() + settings.REPLICA_PIN_SECONDS
            response.set_cookie(
                settings.REPLICA_PIN_COOKIE,
                format_pin(pinned, until),
                max_age=int(settings.REPLICA_PIN_SECONDS) + 1,
                httponly=True,
                samesite="Lax",
            )
            response[settings.REPLICA_PIN_HEADER] = format_pin(pinned, until)
        return response, fresh
    finally:
        state.end(token)
