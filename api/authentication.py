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
  request reads it (one GET on a kept redis-py client, :mod:`core.shared_cache`: about 52 us of
  CPU on this machine, against 150 us through Django's cache) and reloads a remembered token whose
  generation differs, so a token revoked through any process is refused by every process at once.
  When the shared cache cannot be read, nothing remembered is trusted: the token is looked up.
  Without a shared cache the memory is per process, as the setting says;
- unknown and revoked tokens are never remembered, and at most :data:`MAX_ENTRIES` valid ones
  are (oldest out); every request gets its own copy of the account.

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

from core import aliases, shared_cache
from core.tokens import scopes as scope_names
from core.tokens.models import ApiToken
from core.tokens.services import key_digest

logger = logging.getLogger(__name__)

MAX_ENTRIES = 1024
LAST_USED_EVERY_SECONDS = 60.0
#: the shared cache's key holding the current generation of token and account data
GENERATION_KEY = "switchyard:api-token-generation"


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


_lock = threading.Lock()
#: digest -> (monotonic time it was checked, shared generation then, account, grant)
_checked: OrderedDict[str, tuple[float, Any, Any, Grant]] = OrderedDict()
#: token id -> wall time of the last last_used_at this process wrote or read
_last_used: OrderedDict[int, float] = OrderedDict()
_UNAVAILABLE = object()


def forget_all() -> None:
    with _lock:
        _checked.clear()
        _last_used.clear()


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
    _changed(lambda: _checked.pop(instance.digest, None))


def _forget_account(sender: Any, instance: Any, **kwargs: Any) -> None:
    def forget() -> None:
        for digest in [d for d, (_, _, account, _) in _checked.items() if account.pk == instance.pk]:
            del _checked[digest]

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
        raise exceptions.AuthenticationFailed("Invalid token.")
    if row.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This token has been revoked.", code="token_revoked")
    account = row.account
    if not account.is_active:
        raise exceptions.AuthenticationFailed("User inactive or deleted.")
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


class ScopedTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` against hashed, scoped tokens (module doc)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Grant]:
        digest = key_digest(key)
        seconds = settings.API_TOKEN_CACHE_SECONDS
        if seconds <= 0:
            account, grant, last = _load(digest)
            _check_expiry(grant)
            _note_use(grant, last)
            return account, grant
        generation = shared_generation()
        now = time.monotonic()
        with _lock:
            hit = _checked.get(digest)
        if hit is not None and now - hit[0] < seconds and generation is not _UNAVAILABLE and hit[1] == generation:
            _check_expiry(hit[3])
            _note_use(hit[3])
            return _own_copy(hit[2]), hit[3]
        account, grant, last = _load(digest)  # 401 for unknown, revoked keys and inactive accounts
        if generation is not _UNAVAILABLE:
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
