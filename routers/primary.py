"""The primary/replica router: one table from app label to primary alias.

``_db_for_model`` answers reads, writes, relations and migrations, so the four cannot disagree
(the idea of Sentry's router). On top of the primary it adds:

- replica reads: one replica per request per primary (round-robin across requests), skipping
  replicas that failed a health check within ``REPLICA_HEALTH_WINDOW_SECONDS``, falling back to
  the primary when none is healthy;
- read-your-writes: after a write, reads of that primary stay on it for the rest of the request
  (and, through the pin cookie set by :mod:`routers.middleware`, for ``REPLICA_PIN_SECONDS``);
  inside ``transaction.atomic`` on the primary and inside ``use_primary()`` reads go to it too;
- the legacy database: never migrated, and written only when ``LEGACY_ALLOW_WRITES`` is set.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Model

from core import aliases, db_config
from routers import health, state

#: App label -> primary alias. Anything not listed lives on ``default``.
APP_DATABASES: dict[str, str] = {
    "users": aliases.USERS,
    "blog": aliases.DEFAULT,
    "analytics": aliases.ANALYTICS,
    "legacy": aliases.LEGACY,
    "cache": aliases.CACHE,
    # Django's database cache table (DatabaseCache uses this app label for its stand-in model).
    "django_cache": aliases.CACHE,
}

#: Databases we never run migrations on (their schema belongs to someone else).
NEVER_MIGRATED: frozenset[str] = frozenset({aliases.LEGACY})


class LegacyWriteForbidden(Exception):
    """A write to the legacy database was attempted while ``LEGACY_ALLOW_WRITES`` is off."""

    def __init__(self, model: type[Model] | None = None) -> None:
        label = model._meta.label if model is not None else "legacy"
        super().__init__(f"{label} lives on the read-only legacy database; writes are disabled")


def primary_for_label(app_label: str) -> str:
    return APP_DATABASES.get(app_label, aliases.DEFAULT)


def _db_for_model(model: type[Model]) -> str:
    """The primary alias of ``model``: the single answer behind every router method."""
    return primary_for_label(model._meta.app_label)


_counter_lock = threading.Lock()
_counters: dict[str, itertools.count] = {}


def _next_index(primary: str) -> int:
    with _counter_lock:
        counter = _counters.setdefault(primary, itertools.count())
        return next(counter)


def replicas_of(primary: str) -> tuple[str, ...]:
    return db_config.replicas_of(settings.DATABASES).get(primary, ())


def choose_replica(primary: str) -> str:
    """Pick the read alias for ``primary`` for the current request (cached in the request state)."""
    current = state.current()
    chosen = current.replica_choice.get(primary)
    if chosen is not None and (chosen == primary or not health.recently_failed(chosen)):
        return chosen
    replicas = replicas_of(primary)
    chosen = primary
    if replicas:
        start = _next_index(primary)
        for offset in range(len(replicas)):
            candidate = replicas[(start + offset) % len(replicas)]
            if health.recently_failed(candidate):
                continue
            if health.check(candidate):
                chosen = candidate
                break
    current.replica_choice[primary] = chosen
    return chosen


def read_alias(primary: str) -> str:
    """Where this request reads ``primary``'s data: the primary when it has no replica, is pinned
    (read-your-writes, ``use_primary``) or is in a transaction, else the request's replica."""
    if not replicas_of(primary):
        return primary
    if state.is_pinned(primary) or connections[primary].in_atomic_block:
        return primary
    return choose_replica(primary)


class PrimaryReplicaRouter:
    """See the module docstring. Register it last in ``DATABASE_ROUTERS``: it always answers."""

    def db_for_read(self, model: type[Model], **hints: Any) -> str:
        primary = _db_for_model(model)
        instance = hints.get("instance")
        if instance is not None and instance._state.db and aliases.primary_of(instance._state.db) == primary:
            # Related objects are read from where the instance came from.
            return instance._state.db
        return read_alias(primary)

    def db_for_write(self, model: type[Model], **hints: Any) -> str:
        primary = _db_for_model(model)
        if primary == aliases.LEGACY and not (settings.LEGACY_ALLOW_WRITES or state.legacy_writes_allowed()):
            raise LegacyWriteForbidden(model)
        state.note_write(primary)
        return primary

    def allow_relation(self, obj1: Model, obj2: Model, **hints: Any) -> bool:
        db1 = aliases.primary_of(obj1._state.db or _db_for_model(type(obj1)))
        db2 = aliases.primary_of(obj2._state.db or _db_for_model(type(obj2)))
        return db1 == db2

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool:
        if aliases.primary_of(db) != db:
            return False  # never on a replica
        if db in NEVER_MIGRATED:
            return False
        target = hints.get("target_db")
        if target is not None:
            return db == target and primary_for_label(app_label) == db
        return primary_for_label(app_label) == db
