"""Scoped, hashed API tokens (``Authorization: Token <key>``) with a short per-process memory.

A key is found by its SHA-256 digest (``core.tokens``): one hash of a high-entropy key, about a
microsecond, then a dictionary look-up in this process's memory, or one query on ``default``'s
primary. The answer is ``request.user`` (the token's Django account) and ``request.auth`` (a
:class:`Grant`: the token's scopes, bound user, expiry).

Memory: a valid token is remembered for ``API_TOKEN_CACHE_SECONDS`` (0 turns it off):

- a token revoked or changed, or an account changed or deleted, through the ORM in this process
  is forgotten here at once (signals);
- where processes share a cache (``API_TOKEN_REVOCATION_CACHE``: the Redis of ``CACHE_URL``), the
  same signals, once the change is committed, put a new random *generation* in that cache. Every
  request reads it (on the kept redis-py client of :mod:`core.shared_cache`) and reloads a
  remembered token whose generation differs, so a token revoked through any process is refused by
  every process at once. Where the budgets are in the same Redis (``CACHE_URL``) that read and the
  request's budget are one round trip (:func:`one_trip`, ``api.throttling.AUTH_SCRIPT``): the
  remembered token's budget, or a remembered refused key's failure budget, is charged in it while
  the generation is still the one remembered.
  When the shared cache cannot be read, nothing remembered is trusted: the token is looked up.
  Without a shared cache the memory is per process, as the setting says;
- at most :data:`MAX_ENTRIES` valid tokens are remembered (oldest out); every request gets its
  own copy of the account.

Refused keys (unknown, revoked, an inactive account's) are remembered too, by their digest (never
the key), so that one seen once is refused again without a query: in this process at most
``API_REFUSED_TOKEN_ENTRIES`` of them (the least recently seen dropped first) for
``API_REFUSED_TOKEN_SECONDS`` each, and, where processes share a cache, there for the same time
(a key per digest with that TTL, read in the same round trip as the generation). Each
entry carries the generation it was refused under and counts only while the generation is still
that one, so a token created (or an account reactivated) anywhere is let in at once where a
cache is shared; without one, a token saved in this process is forgotten here at once (signals)
and one saved by another process is refused here for at most ``API_REFUSED_TOKEN_SECONDS``.

Failed authentications are throttled per client address (:class:`api.throttling.AuthFailureThrottle`):
the budget is checked before a key is looked up in the database, and charged after each 401; a
request beyond it is a 429 with ``Retry-After``.

``last_used_at`` is written at most once a minute per token (:data:`LAST_USED_EVERY_SECONDS`): one
conditional UPDATE on ``default`` by the first process to see the token after the minute is past.
An expired token is a 401 saying so.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from api import throttling
from core import aliases, shared_cache
from core.tokens import scopes as scope_names
from core.tokens.models import ApiToken
from core.tokens.services import key_digest

logger = logging.getLogger(__name__)

MAX_ENTRIES = 1024
LAST_USED_EVERY_SECONDS = 60.0
#: the shared cache's key holding the current generation of token and account data
GENERATION_KEY = "switchyard:api-token-generation"
#: the shared cache's key prefix of refused keys (followed by the key's digest)
REFUSED_KEY = "switchyard:api-token-refused:"
#: why a key is refused: (message, code) of the 401
REFUSALS = {
    "unknown": ("Invalid token.", "authentication_failed"),
    "revoked": ("This token has been revoked.", "token_revoked"),
    "inactive": ("User inactive or deleted.", "authentication_failed"),
}


@dataclass(frozen=True)
class Grant:
    """What a token allows (``request.auth``). Immutable, so requests may share one."""

    token_id: int
    prefix: str
    #: the token's stable id for per-token state (throttle budgets, idempotency keys): its digest
    key: str
    scopes: frozenset[str]
    bound_user_id: int | None
    expires_at: dt.datetime | None
    staff: bool

    def has(self, scope: str) -> bool:
        return scope in self.scopes


class TokenExpired(exceptions.AuthenticationFailed):
    default_code = "token_expired"


class Refused(exceptions.AuthenticationFailed):
    """A key the database refuses (:data:`REFUSALS`), remembered as such. ``charged``: the
    failure budget's decision ``(admitted, seconds to wait)`` when the refusal was read in the
    same round trip that charged it (:func:`one_trip`), else None."""

    def __init__(self, reason: str, charged: tuple[bool, float] | None = None) -> None:
        message, code = REFUSALS[reason]
        super().__init__(message, code=code)
        self.reason = reason
        self.charged = charged


_lock = threading.Lock()
#: digest -> (monotonic time it was checked, shared generation then, account, grant)
_checked: OrderedDict[str, tuple[float, Any, Any, Grant]] = OrderedDict()
#: token id -> wall time of the last last_used_at this process wrote or read
_last_used: OrderedDict[int, float] = OrderedDict()
#: digest of a refused key -> (monotonic time it is forgotten, shared generation then, reason)
_refused: OrderedDict[str, tuple[float, Any, str]] = OrderedDict()
_UNAVAILABLE = object()


def forget_all() -> None:
    with _lock:
        _checked.clear()
        _last_used.clear()
        _refused.clear()
    throttling.forget_local()


def shared_generation() -> Any:
    """The shared generation (None when never set), or ``_UNAVAILABLE`` when the cache is down;
    None as well when no cache is shared. On Redis one GET on the kept client (core.shared_cache);
    any other shared cache through Django's cache framework."""
    alias = settings.API_TOKEN_REVOCATION_CACHE
    if not alias:
        return None
    client = shared_cache.client_for(alias)
    try:
        if client is not None:
            return shared_cache.decode(client.get(shared_cache.key_for(alias, GENERATION_KEY)))
        return caches[alias].get(GENERATION_KEY)
    except (RedisError, OSError, DatabaseError) as exc:
        logger.warning("token revocation cache unreadable; looking tokens up: %s", exc)
        return _UNAVAILABLE


def _marker(generation: Any, reason: str) -> str:
    return f"{generation if generation is not None else ''}|{reason}"


def shared_state(digest: str, *, refusal: bool) -> tuple[Any, str | None]:
    """The shared generation (as :func:`shared_generation`) and, when ``refusal``, why the key of
    ``digest`` was refused under that same generation (None: not remembered as refused), in one
    round trip (``MGET``)."""
    alias = settings.API_TOKEN_REVOCATION_CACHE
    if not alias or not refusal:
        return shared_generation(), None
    client = shared_cache.client_for(alias)
    try:
        if client is not None:
            raw = client.mget(
                [shared_cache.key_for(alias, GENERATION_KEY), shared_cache.key_for(alias, REFUSED_KEY + digest)]
            )
            generation, marker = shared_cache.decode(raw[0]), shared_cache.decode(raw[1])
        else:
            values = caches[alias].get_many([GENERATION_KEY, REFUSED_KEY + digest])
            generation, marker = values.get(GENERATION_KEY), values.get(REFUSED_KEY + digest)
    except (RedisError, OSError, DatabaseError) as exc:
        logger.warning("token revocation cache unreadable; looking tokens up: %s", exc)
        return _UNAVAILABLE, None
    return generation, _refusal_of(marker, generation)


def _refusal_of(marker: Any, generation: Any) -> str | None:
    """Why a shared refused-key entry refuses its key under ``generation`` (None: it does not count)."""
    if marker is None:
        return None
    stamp, _, reason = str(marker).rpartition("|")
    current = "" if generation is None else str(generation)
    return reason if reason in REFUSALS and stamp == current else None


def one_trip_url() -> str | None:
    """The Redis URL when the revocation generation (``API_TOKEN_REVOCATION_CACHE``) and the
    budgets (``API_THROTTLE_CACHE``) are kept in the same Redis, as with ``CACHE_URL``: then a
    request asks both in one round trip (:func:`one_trip`). Else None."""
    alias = settings.API_TOKEN_REVOCATION_CACHE
    url = shared_cache.redis_location(alias) if alias else None
    return url if url is not None and url == throttling.shared_url() else None


def one_trip(
    url: str, digest: str, *, remembered: Any, expect: bool, probe: bool, budget: tuple[str, Any] | None
) -> tuple[Any, str | None, tuple[bool, float] | None]:
    """One ``EVALSHA`` of :data:`api.throttling.AUTH_SCRIPT` on the kept client: the shared
    generation, why the key of ``digest`` is refused under it when ``probe`` (else None), and
    the decision of ``budget`` (its key and :class:`api.throttling.Gcra`) when it was charged:
    when ``expect`` and the generation is still ``remembered``, or when the shared refused entry
    counts. ``(_UNAVAILABLE, None, None)`` when Redis cannot be read."""
    alias = settings.API_TOKEN_REVOCATION_CACHE
    keys = [shared_cache.key_for(alias, GENERATION_KEY), shared_cache.key_for(alias, REFUSED_KEY + digest)]
    args: list[Any] = ["" if remembered is None else str(remembered), "1" if expect else "0", "1" if probe else "0"]
    if budget is not None:
        keys.append(shared_cache.key_for(settings.API_THROTTLE_CACHE, budget[0]))
        args.extend(budget[1].args())
    else:
        keys.append(keys[0])
        args.extend(["", "", ""])
    try:
        answer = throttling.auth_script(url)(keys=keys, args=args)
    except (RedisError, OSError) as exc:
        logger.warning("token revocation cache unreadable; looking tokens up: %s", exc)
        return _UNAVAILABLE, None, None
    generation = shared_cache.decode(answer[0])
    refusal = _refusal_of(shared_cache.decode(answer[1]), generation) if probe else None
    decision = budget[1].verdict(answer[2], answer[3]) if budget is not None and len(answer) > 2 else None
    return generation, refusal, decision


def _remember_refusal(digest: str, generation: Any, reason: str) -> None:
    """In this process (bounded, least recently seen out) and in the shared cache, both for
    ``API_REFUSED_TOKEN_SECONDS``."""
    seconds = settings.API_REFUSED_TOKEN_SECONDS
    with _lock:
        _refused[digest] = (time.monotonic() + seconds, generation, reason)
        _refused.move_to_end(digest)
        while len(_refused) > settings.API_REFUSED_TOKEN_ENTRIES:
            _refused.popitem(last=False)
    alias = settings.API_TOKEN_REVOCATION_CACHE
    if not alias:
        return
    client = shared_cache.client_for(alias)
    try:
        if client is not None:
            client.set(
                shared_cache.key_for(alias, REFUSED_KEY + digest), _marker(generation, reason), px=int(seconds * 1000)
            )
        else:
            caches[alias].set(REFUSED_KEY + digest, _marker(generation, reason), timeout=seconds)
    except (RedisError, OSError, DatabaseError) as exc:  # remembered here only
        logger.warning("token revocation cache unwritable: %s", exc)


def _forget_refusal_shared(digest: str) -> None:
    alias = settings.API_TOKEN_REVOCATION_CACHE
    if not alias:
        return
    client = shared_cache.client_for(alias)
    try:
        if client is not None:
            client.delete(shared_cache.key_for(alias, REFUSED_KEY + digest))
        else:
            caches[alias].delete(REFUSED_KEY + digest)
    except (RedisError, OSError, DatabaseError) as exc:  # the new generation makes the entry void anyway
        logger.warning("token revocation cache unwritable: %s", exc)


def bump_generation() -> None:
    """Make every process sharing the cache reload the tokens it remembers (a new random value:
    no process can mistake it for one it saw before, even after the cache lost its data)."""
    alias = settings.API_TOKEN_REVOCATION_CACHE
    if not alias:
        return
    client = shared_cache.client_for(alias)
    value = secrets.token_hex(8)
    try:
        if client is not None:
            client.set(shared_cache.key_for(alias, GENERATION_KEY), value)
        else:
            caches[alias].set(GENERATION_KEY, value, timeout=None)
    except (RedisError, OSError, DatabaseError) as exc:  # the readers then see it unreadable, or a changed value
        logger.warning("token revocation cache unwritable: %s", exc)


def _changed(forget: Any) -> None:
    with _lock:
        forget()
    # After the commit: a process reloading before it would read the old row and keep it.
    transaction.on_commit(bump_generation, using=aliases.DEFAULT)


def _forget_token(sender: Any, instance: ApiToken, **kwargs: Any) -> None:
    """A token created, changed or deleted: neither remembered as valid nor as refused, here at
    once and, after the commit, in the shared cache (whose entries the new generation voids too)."""
    digest = instance.digest

    def forget() -> None:
        _checked.pop(digest, None)
        _refused.pop(digest, None)

    _changed(forget)
    transaction.on_commit(lambda: _forget_refusal_shared(digest), using=aliases.DEFAULT)


def _forget_account(sender: Any, instance: Any, **kwargs: Any) -> None:
    def forget() -> None:
        for digest in [d for d, (_, _, account, _) in _checked.items() if account.pk == instance.pk]:
            del _checked[digest]
        # (refusals do not name their account: every "inactive" one is looked up again)
        for digest in [d for d, (_, _, reason) in _refused.items() if reason == "inactive"]:
            del _refused[digest]

    _changed(forget)


post_save.connect(_forget_token, sender=ApiToken, dispatch_uid="switchyard-token-cache-save")
post_delete.connect(_forget_token, sender=ApiToken, dispatch_uid="switchyard-token-cache-delete")
post_save.connect(_forget_account, sender=get_user_model(), dispatch_uid="switchyard-token-cache-user-save")
post_delete.connect(_forget_account, sender=get_user_model(), dispatch_uid="switchyard-token-cache-user-delete")


def _own_copy(user: Any) -> Any:
    """A shallow copy of a remembered account for one request: what ``copy.copy`` gives (its own
    attributes and model state, the field values shared), without the pickle protocol's detour."""
    clone = user.__class__.__new__(user.__class__)
    clone.__dict__.update(user.__dict__)
    state = clone._state = copy.copy(user._state)
    state.fields_cache = dict(user._state.fields_cache)
    return clone


def _load(digest: str) -> tuple[Any, Grant, float]:
    """The account and grant of a valid (not revoked) token, from ``default``'s primary (a replica
    could still show a revoked token), and its last use (wall time, 0 when never)."""
    row = ApiToken.objects.using(aliases.DEFAULT).select_related("account").filter(digest=digest).first()
    if row is None:
        raise Refused("unknown")
    if row.revoked_at is not None:
        raise Refused("revoked")
    account = row.account
    if not account.is_active:
        raise Refused("inactive")
    granted = row.scope_set if account.is_staff else row.scope_set - scope_names.STAFF_ONLY
    grant = Grant(
        token_id=row.pk,
        prefix=row.prefix,
        key=digest,
        scopes=frozenset(granted),
        bound_user_id=row.bound_user_id,
        expires_at=row.expires_at,
        staff=bool(account.is_staff),
    )
    return account, grant, row.last_used_at.timestamp() if row.last_used_at else 0.0


def _check_expiry(grant: Grant) -> None:
    if grant.expires_at is not None and grant.expires_at <= timezone.now():
        raise TokenExpired(f"This token expired at {grant.expires_at.isoformat().replace('+00:00', 'Z')}.")


def _note_use(grant: Grant, known: float | None = None) -> None:
    """Write ``last_used_at`` when this process has not seen it written in the last minute (the
    UPDATE's condition keeps it to once a minute across processes too)."""
    now = time.time()
    with _lock:
        last = max(_last_used.get(grant.token_id, 0.0), known or 0.0)
        due = now - last >= LAST_USED_EVERY_SECONDS
        _last_used[grant.token_id] = now if due else last
        _last_used.move_to_end(grant.token_id)
        while len(_last_used) > MAX_ENTRIES:
            _last_used.popitem(last=False)
    if not due:
        return
    stamp = dt.datetime.fromtimestamp(now, dt.UTC)
    before = stamp - dt.timedelta(seconds=LAST_USED_EVERY_SECONDS)
    try:
        # Explicit alias: a bookkeeping write, not the request's (no read-your-writes pin).
        ApiToken.objects.using(aliases.DEFAULT).filter(pk=grant.token_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=before)
        ).update(last_used_at=stamp)
    except DatabaseError as exc:  # best effort: a request is not refused for its bookkeeping
        logger.warning("could not record the token's last use: %s", exc)


def refused_early(key: str, request: Any) -> Refused | None:
    """The refusal of ``key`` when this process remembers it as refused and the shared generation
    (if any) is still the one it was refused under, else None (the request then goes through
    DRF as usual). With the generation and the budgets in one Redis, the address's failure budget
    is charged in the same round trip (the decision on the returned :class:`Refused`); else the
    caller charges it. For :class:`api.middleware.RefusedKeyMiddleware`, before DRF."""
    if settings.API_REFUSED_TOKEN_SECONDS <= 0:
        return None
    digest = key_digest(key)
    with _lock:
        refused = _refused.get(digest)
    if refused is None or time.monotonic() >= refused[0]:
        return None
    decision = None
    url = one_trip_url()
    if url is not None:
        failures = throttling.AuthFailureThrottle(request)
        budget = (failures.key, failures.gcra) if failures.gcra is not None else None
        generation, _, decision = one_trip(url, digest, remembered=refused[1], expect=True, probe=False, budget=budget)
    else:
        generation = shared_generation()
    if generation is _UNAVAILABLE or generation != refused[1]:
        return None  # nothing charged: the script charges only while the generation holds
    with _lock:
        if digest in _refused:
            _refused.move_to_end(digest)
    return Refused(refused[2], decision)


class ScopedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` against hashed, scoped tokens (module doc)."""

    #: the request being authenticated (None when a key is checked without one: tests, benchmarks)
    request: Any = None

    def authenticate(self, request: Any) -> tuple[Any, Grant] | None:
        """DRF's parsing of the header, then :meth:`authenticate_credentials`; every failure
        (malformed header, refused or expired key) is charged to the client address's budget,
        and one beyond it is a 429 instead of the 401."""
        self.request = request
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed as exc:
            charged = exc.charged if isinstance(exc, Refused) else None
            if charged is not None:  # charged in the round trip that found the refusal
                wait = None if charged[0] else charged[1]
            else:
                wait = throttling.AuthFailureThrottle(request).failed()
            if wait is not None:
                raise exceptions.Throttled(wait) from None
            raise

    def authenticate_credentials(self, key: str) -> tuple[Any, Grant]:
        digest = key_digest(key)
        seconds = settings.API_TOKEN_CACHE_SECONDS
        remember_refusals = settings.API_REFUSED_TOKEN_SECONDS > 0
        now = time.monotonic()
        with _lock:
            hit = _checked.get(digest) if seconds > 0 else None
            refused = _refused.get(digest) if remember_refusals else None
        if hit is not None and now - hit[0] >= seconds:
            hit = None
        if refused is not None and now >= refused[0]:
            refused = None
        probe = remember_refusals and hit is None and refused is None
        url = one_trip_url() if seconds > 0 or remember_refusals else None
        decision = None
        budget: tuple[str, Any] | None = None
        if url is not None:
            # One round trip: the generation, the shared refusal, and the budget this request
            # spends when what this process remembers still holds (the token's own when it is a
            # remembered valid one, else the address's failure budget).
            if hit is not None:
                token_budget = throttling.token_budget()
                expired = hit[3].expires_at is not None and hit[3].expires_at <= timezone.now()
                if token_budget is not None and not expired:
                    budget = (throttling.token_budget_key(digest), token_budget)
            elif self.request is not None:
                failures = throttling.AuthFailureThrottle(self.request)
                budget = (failures.key, failures.gcra) if failures.gcra is not None else None
            remembered = hit[1] if hit is not None else refused[1] if refused is not None else None
            generation, shared_refusal, decision = one_trip(
                url,
                digest,
                remembered=remembered,
                expect=hit is not None or refused is not None,
                probe=probe,
                budget=budget,
            )
        elif seconds > 0 or remember_refusals:
            generation, shared_refusal = shared_state(digest, refusal=probe)
        else:
            generation, shared_refusal = None, None
        trusted = generation is not _UNAVAILABLE
        if hit is not None and trusted and hit[1] == generation:
            if decision is not None and budget is not None:
                throttling.charged.set((budget[0], budget[1], *decision))
            _check_expiry(hit[3])
            _note_use(hit[3])
            return _own_copy(hit[2]), hit[3]
        if refused is not None and trusted and refused[1] == generation:
            with _lock:
                if digest in _refused:
                    _refused.move_to_end(digest)
            raise Refused(refused[2], decision)
        if shared_refusal is not None:
            with _lock:
                _refused[digest] = (now + settings.API_REFUSED_TOKEN_SECONDS, generation, shared_refusal)
                _refused.move_to_end(digest)
                while len(_refused) > settings.API_REFUSED_TOKEN_ENTRIES:
                    _refused.popitem(last=False)
            raise Refused(shared_refusal, decision)
        if self.request is not None:
            throttling.AuthFailureThrottle(self.request).check()  # before the database: a 429 when spent
        try:
            account, grant, last = _load(digest)
        except Refused as exc:
            if remember_refusals and trusted:
                _remember_refusal(digest, generation, exc.reason)
            raise
        if seconds > 0 and trusted:
            with _lock:
                _checked[digest] = (now, generation, account, grant)
                _checked.move_to_end(digest)
                while len(_checked) > MAX_ENTRIES:
                    _checked.popitem(last=False)
        _check_expiry(grant)
        _note_use(grant, last)
        return _own_copy(account), grant


#: The name the settings used before scopes; the same class.
CachedTokenAuthentication = ScopedTokenAuthentication
