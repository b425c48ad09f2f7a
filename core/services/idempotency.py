"""Idempotency keys: a retried request gets the first answer instead of writing twice.

A request carrying ``Idempotency-Key: <key>`` first *claims* the key with an INSERT on a unique
``(scope, key)`` row on ``default`` (:class:`~core.models.IdempotencyRecord`). Whoever inserts
first owns the key; the database's unique index decides a race (on PostgreSQL the second INSERT
waits for the first to commit, then fails). Then:

- the owner runs the request and stores its answer (status, body, content type) with
  :func:`complete`; a 5xx answer (or a crash in the view) :func:`release` s the key instead, so that
  a retry may run again;
- a later request with the same key and the same fingerprint (method, path, canonical JSON body)
  gets the stored answer replayed, without running anything;
- the same key with another fingerprint: ``mismatch`` (the API answers 422);
- the same key while the owner is still running: ``in_progress`` (the API answers 409 with
  ``Retry-After``; we answer at once rather than hold a worker waiting). A claim older than
  ``IDEMPOTENCY_IN_PROGRESS_SECONDS`` belongs to a request whose process died; the next request
  with the same fingerprint takes it over.

Keys live in a *scope* (one per API token), so two callers never see each other's answers, and
expire ``IDEMPOTENCY_TTL_SECONDS`` (default 24 h) after the claim; an expired key is claimed anew.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import aliases
from core.errors import Conflict
from core.models import IdempotencyRecord

CLAIMED = "claimed"
REPLAY = "replay"
MISMATCH = "mismatch"
IN_PROGRESS = "in_progress"

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Claim:
    outcome: str
    record: IdempotencyRecord


def fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 of the request: method, path and the body as canonical JSON (key order ignored)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def scope_for_token(token_key: str) -> str:
    """The scope of an API token: a hash, so that the table never holds a usable credential."""
    return "token:" + hashlib.sha256(token_key.encode()).hexdigest()[:40]


def claim(*, scope: str, key: str, fingerprint: str) -> Claim:
    """Claim ``key`` in ``scope`` for a request with ``fingerprint`` (see the module docstring)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError("an idempotency key has 1 to 255 characters")
    for _attempt in range(3):
        now = timezone.now()
        try:
            with transaction.atomic(using=aliases.DEFAULT):
                record = IdempotencyRecord.objects.create(
                    scope=scope,
                    key=key,
                    fingerprint=fingerprint,
                    expires_at=now + dt.timedelta(seconds=settings.IDEMPOTENCY_TTL_SECONDS),
                )
            return Claim(CLAIMED, record)
        except IntegrityError:
            pass  # somebody holds the key: look at their record
        with transaction.atomic(using=aliases.DEFAULT):
            record = IdempotencyRecord.objects.select_for_update().filter(scope=scope, key=key).first()
            if record is None:
                continue  # released or expired in the meantime: claim again
            if record.expires_at <= now:
                record.delete()
                continue
            if record.fingerprint != fingerprint:
                return Claim(MISMATCH, record)
            if record.status == IdempotencyRecord.Status.COMPLETED:
                return Claim(REPLAY, record)
            stale = now - dt.timedelta(seconds=settings.IDEMPOTENCY_IN_PROGRESS_SECONDS)
            if record.updated_at <= stale:
                record.save(update_fields=["updated_at"])  # take over a claim its owner abandoned
                return Claim(CLAIMED, record)
            return Claim(IN_PROGRESS, record)
    raise Conflict(f"Idempotency-Key {key!r} is changing hands too fast; retry the request")


def complete(
    record: IdempotencyRecord, *, status: int, body: Any, content_type: str = "", headers: dict | None = None
) -> None:
    """Store the first answer for replays."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED,
        response_status=status,
        response_body=json.loads(json.dumps(body, cls=DjangoJSONEncoder)),
        response_content_type=content_type or "",
        response_headers=headers or {},
        updated_at=timezone.now(),
    )


def release(record: IdempotencyRecord) -> None:
    """Forget an unfinished claim (the request failed in a way a retry may fix)."""
    IdempotencyRecord.objects.filter(pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS).delete()


def purge_expired(*, batch_size: int = 1000) -> int:
    """Delete expired keys in batches; returns how many."""
    total = 0
    while True:
        ids = list(
            IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        total += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]
