"""Per-token throttling, the per-address budget of failed authentications, and what both tell the client.

Each API token has its own budget (``API_THROTTLE_RATE``, ``n/period``, e.g. ``1200/min``), kept
in the cache named by ``API_THROTTLE_CACHE`` (Redis when ``CACHE_URL`` is set, so every process
shares it), or, when that setting is empty (the default without ``CACHE_URL``), in this process's
memory: a dictionary of at most :data:`LOCAL_ENTRIES` tokens, the least recently seen dropped
first (not Django's local-memory cache, whose key check walks every character of the key in
Python and which pickles the number: 24-28 us a check against 4-5 us on the dictionary). Over the budget: 429
with ``Retry-After``. The key is a hash of the token, never the token itself.

Failed authentications (a 401 for a malformed, unknown, revoked or expired key) have a budget of
their own per client address (``API_AUTH_FAILURE_RATE``, :class:`AuthFailureThrottle`), in the same
store: :mod:`api.authentication` checks it before it would ask the database about a key, and
charges it after each failure; beyond it the answer is a 429 with ``Retry-After``. The address is
the connection's peer, or the last address of ``X-Forwarded-For`` when that peer is a trusted
proxy (``FORWARDED_ALLOW_IPS``, the setting gunicorn reads for the same purpose; a UNIX-socket
peer is a proxy); IPv6 addresses share their /64 (:func:`client_address`).

The budget is a generic cell rate (GCRA, a leaky bucket kept as one number per token): a token
may send ``n`` requests at once, and after that one every ``period / n`` seconds, so at most ``n``
in any ``period`` on average. DRF's own throttle keeps the time of every request of the period
and reads and writes that whole list on every request (thousands of entries at high rates);
this keeps one float.

The check-and-update is one atomic operation. With a Redis cache (``CACHE_URL``; Django's
``RedisCache`` or django-redis) it is a Lua script run by Redis (``EVAL``/``EVALSHA`` through
redis-py's public ``register_script``, on the kept client of :mod:`core.shared_cache`): read the token's time, compare, write it back, on Redis's
own clock (``TIME``; Redis 5 or later, which replicates a script's effects), so N processes, on one host or many, admit no more than the budget. With a
per-process store the same arithmetic runs under a process-wide lock. If Redis cannot be reached
the request is admitted (a throttle protects the service; it must not take it down) and a warning
is logged.

Every decision also says what is left (:class:`Quota`): the script answers the seconds until the
budget is whole again along with its verdict, so no further round trip is made. The request
middleware (:mod:`api.middleware`) writes the last decision of the request as the
``RateLimit-Policy`` and ``RateLimit`` fields of draft-ietf-httpapi-ratelimit-headers-10
(structured fields: ``"token";q=1200;w=60`` and ``"token";r=1187;t=3``; :func:`rate_limit_headers`).
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import os
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, NamedTuple

import redis
from django.conf import settings
from django.core.cache import caches
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from core import shared_cache

log = logging.getLogger("switchyard.throttle")

#: KEYS[1]: the budget's key. ARGV: interval, tolerance (seconds), expiry (ms). Returns
#: {"1", seconds until the budget is whole again} when the request is admitted, else {"0", the
#: seconds to wait} (strings: Lua numbers come back as integers).
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local arrival = tonumber(redis.call('GET', KEYS[1]) or '0')
if arrival < now then arrival = now end
if arrival - now > tolerance + 1e-9 then
  return {'0', tostring(arrival - now - tolerance)}
end
redis.call('SET', KEYS[1], string.format('%.6f', arrival + interval), 'PX', ARGV[3])
return {'1', tostring(arrival + interval - now)}
"""

#: KEYS[1]: the budget's key. ARGV: tolerance (seconds). Returns "" when a request would be
#: admitted, else the seconds to wait; changes nothing.
PEEK_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local arrival = tonumber(redis.call('GET', KEYS[1]) or '0')
if arrival - now > tonumber(ARGV[1]) + 1e-9 then
  return tostring(arrival - now - tonumber(ARGV[1]))
end
return ''
"""

#: One round trip for what every authenticated request asks of Redis (api.authentication): the
#: token revocation generation, a refused key's entry, and one budget, charged only when the
#: in-process memory still holds. KEYS: the generation, the refused-key entry, the budget.
#: ARGV: [1] the generation the process remembers ("" for none), [2] "1" to charge the budget when
#: the generation is still that one, [3] "1" to read the refused-key entry and charge the budget
#: when that entry counts (its generation is the current one and its reason a known one), [4]
#: interval, [5] tolerance, [6] expiry (ms) of the budget ("" for no budget). Returns {generation,
#: entry} (each nil when absent), followed by the GCRA verdict and seconds as :data:`GCRA_SCRIPT`
#: when the budget was charged.
AUTH_SCRIPT = """
local generation = redis.call('GET', KEYS[1])
local current = generation or ''
local entry = false
if ARGV[3] == '1' then entry = redis.call('GET', KEYS[2]) end
if ARGV[6] == '' then return {generation, entry} end
local charge = ARGV[2] == '1' and current == ARGV[1]
if not charge and entry then
  local stamp, reason = string.match(entry, '^(.*)|([^|]*)$')
  charge = stamp == current and (reason == 'unknown' or reason == 'revoked' or reason == 'inactive')
end
if not charge then return {generation, entry} end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local interval = tonumber(ARGV[4])
local tolerance = tonumber(ARGV[5])
local arrival = tonumber(redis.call('GET', KEYS[3]) or '0')
if arrival < now then arrival = now end
if arrival - now > tolerance + 1e-9 then
  return {generation, entry, '0', tostring(arrival - now - tolerance)}
end
redis.call('SET', KEYS[3], string.format('%.6f', arrival + interval), 'PX', ARGV[6])
return {generation, entry, '1', tostring(arrival + interval - now)}
"""

_local_lock = threading.Lock()
#: The per-process budgets (``API_THROTTLE_CACHE`` empty): key -> the token's theoretical arrival time.
_local: OrderedDict[str, float] = OrderedDict()
#: The same for failed authentications, per client address (apart, so a flood of addresses
#: cannot push the tokens' budgets out).
_local_failures: OrderedDict[str, float] = OrderedDict()
LOCAL_ENTRIES = 10_000

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Quota(NamedTuple):
    """What one throttle decision tells the client (draft-ietf-httpapi-ratelimit-headers). A
    named tuple: made on every request, and cheaper to make than a frozen dataclass."""

    #: the policy's name: ``token`` (per token) or ``auth-failure`` (failed authentications per address)
    policy: str
    #: requests of the budget (``q``) per ``window`` seconds (``w``)
    limit: int
    window: int
    #: requests that may still be sent at once (``r``)
    remaining: int
    #: whole seconds until the budget is whole again (``t``)
    reset: int


#: The last throttle decision of the request (set by the throttles, read and reset by
#: api.middleware.RequestMiddleware). A context variable: nothing is set on Django's or DRF's objects.
counted: ContextVar[Quota | None] = ContextVar("switchyard_rate_limit", default=None)

#: The token budget already charged for this request, in the same round trip as the token's
#: revocation check (api.authentication, :data:`AUTH_SCRIPT`): (budget key, budget, admitted,
#: seconds to wait). :class:`TokenRateThrottle` takes it instead of charging again. Reset by
#: api.middleware.RequestMiddleware with :data:`counted`.
charged: ContextVar[tuple[str, Any, bool, float] | None] = ContextVar("switchyard_token_charged", default=None)


def rate_limit_headers(quota: Quota) -> tuple[str, str]:
    """``(RateLimit-Policy, RateLimit)`` field values for ``quota``."""
    return (
        f'"{quota.policy}";q={quota.limit};w={quota.window}',
        f'"{quota.policy}";r={quota.remaining};t={quota.reset}',
    )


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """``"1200/minute"`` -> ``(1200, 60)`` (the unit by its first letter, as DRF reads it); None
    when the rate is empty (no budget)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0]]


def forget_local() -> None:
    """Every per-process budget whole again (tests)."""
    with _local_lock:
        _local.clear()
        _local_failures.clear()


@functools.cache
def _script(url: str, pid: int, source: str) -> Any:
    return shared_cache.client(url).register_script(source)


def gcra_script(url: str) -> Any:
    """The registered script on this process's kept client of ``url`` (core.shared_cache)."""
    return _script(url, os.getpid(), GCRA_SCRIPT)


def peek_script(url: str) -> Any:
    return _script(url, os.getpid(), PEEK_SCRIPT)


def auth_script(url: str) -> Any:
    """:data:`AUTH_SCRIPT` registered on this process's kept client of ``url``: redis-py sends
    ``EVALSHA`` and, when Redis answers ``NOSCRIPT`` (a restarted or flushed Redis), loads it and
    sends it again."""
    return _script(url, os.getpid(), AUTH_SCRIPT)


def token_budget_key(digest: str) -> str:
    """The budget key of the token of ``digest`` (what :class:`TokenRateThrottle` names it)."""
    ident = hashlib.sha256(digest.encode()).hexdigest()[:32]
    return TokenRateThrottle.cache_format % {"scope": TokenRateThrottle.scope, "ident": ident}


def token_budget() -> Gcra | None:
    """The per-token budget of ``API_THROTTLE_RATE`` (None when the rate is empty)."""
    rate = parse_rate(api_settings.DEFAULT_THROTTLE_RATES.get(TokenRateThrottle.scope))
    return gcra(TokenRateThrottle.scope, rate[0], rate[1], "tokens") if rate else None


def shared_url() -> str | None:
    """The Redis URL of the budgets when ``API_THROTTLE_CACHE`` is a Redis cache, else None."""
    alias = settings.API_THROTTLE_CACHE
    return shared_cache.redis_location(alias) if alias else None


@functools.lru_cache(maxsize=64)
def gcra(policy: str, count: int, seconds: int, store: str) -> Gcra:
    """The (immutable) budget of a policy and rate, made once; ``store``: ``tokens`` or ``failures``,
    the per-process dictionary it uses."""
    return Gcra(policy, count, seconds, _local if store == "tokens" else _local_failures)


class Gcra:
    """One budget of ``count`` requests per ``seconds`` (module doc): the arithmetic, on this
    process's dictionary ``store``, on a named Django cache, or on Redis."""

    def __init__(self, policy: str, count: int, seconds: int, store: OrderedDict[str, float]) -> None:
        self.policy = policy
        self.count = count
        self.seconds = seconds
        self.interval = seconds / count  # one request's share of the period
        self.tolerance = seconds - self.interval  # how far ahead of the steady pace a burst may go
        self.store = store

    def quota(self, admitted: bool, ahead: float) -> Quota:
        """``ahead``: seconds until the budget is whole again (after this request)."""
        remaining = math.floor((self.seconds - ahead) / self.interval + 1e-9) if admitted else 0
        return Quota(self.policy, self.count, self.seconds, max(0, remaining), max(0, math.ceil(ahead - 1e-9)))

    def args(self) -> list[Any]:
        """The script arguments of this budget: interval, tolerance (seconds), expiry (ms)."""
        return [repr(self.interval), repr(self.tolerance), int(self.seconds * 1000)]

    def verdict(self, verdict: Any, seconds: Any) -> tuple[bool, float]:
        """A script's GCRA answer -> ``(admitted, seconds to wait)``; records it in :data:`counted`."""
        admitted, value = shared_cache.decode(verdict) == "1", float(shared_cache.decode(seconds))
        counted.set(self.quota(admitted, value if admitted else value + self.tolerance))
        return admitted, 0.0 if admitted else value

    def take(self, key: str, now: float) -> tuple[bool, float]:
        """Admit one request or not: ``(True, 0)`` or ``(False, seconds to wait)``; records the
        decision in :data:`counted`."""
        alias = settings.API_THROTTLE_CACHE
        url = shared_cache.redis_location(alias) if alias else None
        if url is not None:
            shared_key = shared_cache.key_for(alias, key)
            try:
                verdict, seconds = gcra_script(url)(keys=[shared_key], args=self.args())
            except redis.RedisError as exc:
                log.warning("throttle: Redis unavailable, request admitted: %s", exc)
                return True, 0.0
            return self.verdict(verdict, seconds)
        return self._take_in_process(caches[alias] if alias else None, key, now)

    def _take_in_process(self, cache: Any, key: str, now: float) -> tuple[bool, float]:
        """Under a process-wide lock (this process's threads take turns), on ``store`` (``cache``
        None) or on another kind of Django cache."""
        store = self.store
        with _local_lock:
            # The "theoretical arrival time": when the budget will be whole again.
            arrival = max(float((store.get(key) if cache is None else cache.get(key)) or 0.0), now)
            refused = arrival - now > self.tolerance + 1e-9  # (float sums of period / n)
            if not refused:
                arrival += self.interval
                if cache is not None:
                    cache.set(key, arrival, self.seconds)
                else:
                    store[key] = arrival
            if cache is None:
                store.move_to_end(key)  # a refused key is the last one to forget
                if len(store) > LOCAL_ENTRIES:
                    store.popitem(last=False)
        counted.set(self.quota(not refused, arrival - now))
        return not refused, arrival - now - self.tolerance if refused else 0.0

    def peek(self, key: str, now: float) -> float | None:
        """The seconds to wait when the budget is spent, else None; changes nothing (a Redis
        that cannot be reached: None)."""
        alias = settings.API_THROTTLE_CACHE
        url = shared_cache.redis_location(alias) if alias else None
        if url is not None:
            try:
                answer = shared_cache.decode(
                    peek_script(url)(keys=[shared_cache.key_for(alias, key)], args=[repr(self.tolerance)])
                )
            except redis.RedisError as exc:
                log.warning("throttle: Redis unavailable, budget not checked: %s", exc)
                return None
            wait = float(answer) if answer else None
        else:
            cache = caches[alias] if alias else None
            arrival = float((self.store.get(key) if cache is None else cache.get(key)) or 0.0)
            wait = arrival - now - self.tolerance if arrival - now > self.tolerance + 1e-9 else None
        if wait is not None:
            counted.set(self.quota(False, wait + self.tolerance))
        return wait


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_rate(self) -> str | None:
        # Read at each request (not at import), so the setting can change without a restart of DRF.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = getattr(request.auth, "key", None)
        if not token:
            return None  # unauthenticated requests are refused (401) before throttling
        return token_budget_key(token)

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        budget = gcra(self.scope, self.num_requests, self.duration, "tokens")
        done = charged.get()
        if (
            done is not None
            and done[0] == self.key
            and (done[1].count, done[1].seconds) == (budget.count, budget.seconds)
        ):
            charged.set(None)
            admitted, wait = done[2], done[3]
        else:
            admitted, wait = budget.take(self.key, self.timer())
        if not admitted:
            self._wait = wait
        return admitted

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


# ---- failed authentications, per client address -----------------------------------------------


@functools.lru_cache(maxsize=8)
def _proxies(entries: tuple[str, ...]) -> tuple[bool, tuple[Any, ...]]:
    """``FORWARDED_ALLOW_IPS`` -> (every peer trusted, the trusted networks)."""
    return "*" in entries, tuple(ipaddress.ip_network(e, strict=False) for e in entries if e != "*")


def trusted_proxy(peer: str) -> bool:
    """Whether the connection's peer is a proxy whose ``X-Forwarded-For`` is believed: listed in
    ``FORWARDED_ALLOW_IPS`` (addresses or networks, ``*`` for any), or no IP address at all (a
    UNIX socket, as gunicorn treats it)."""
    if not peer:
        return True
    every, networks = _proxies(tuple(settings.FORWARDED_ALLOW_IPS))
    if every:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(address in network for network in networks)


def client_address(request: Any) -> str:
    """The address a request comes from: the last entry of ``X-Forwarded-For`` (the one the
    nearest proxy wrote; nginx here replaces the header with the client's address) when the peer
    is a trusted proxy and that entry is an IP address, else the peer. An IPv6 address stands for
    its /64, which one machine commonly holds whole."""
    meta = request.META
    peer = meta.get("REMOTE_ADDR") or ""
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    address = peer
    if forwarded and trusted_proxy(peer):
        candidate = forwarded.rsplit(",", 1)[-1].strip()
        try:
            ipaddress.ip_address(candidate)
            address = candidate
        except ValueError:
            pass
    if ":" in address:
        try:
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        except ValueError:
            return address
    return address or "unix"


class AuthFailureThrottle:
    """The budget of failed authentications of one client address (``API_AUTH_FAILURE_RATE``;
    empty: none)."""

    policy = "auth-failure"

    def __init__(self, request: Any) -> None:
        rate = parse_rate(settings.API_AUTH_FAILURE_RATE)
        self.gcra = gcra(self.policy, rate[0], rate[1], "failures") if rate else None
        self.address = client_address(request)
        self.key = "throttle_auth-failure_" + hashlib.sha256(self.address.encode()).hexdigest()[:32]

    def check(self) -> None:
        """Before a key is looked up: a 429 when the address's budget is spent."""
        if self.gcra is not None:
            wait = self.gcra.peek(self.key, time.time())
            if wait is not None:
                raise exceptions.Throttled(wait)

    def failed(self) -> float | None:
        """Charge one failure: None while within the budget, else the seconds to wait."""
        if self.gcra is None:
            return None
        admitted, wait = self.gcra.take(self.key, time.time())
        return None if admitted else wait
