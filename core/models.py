"""Records of the ``core`` app, all on ``default``: the saga log and the idempotency keys.

The saga log is what makes a write across databases recoverable: each run of a use case that
writes several databases (:mod:`core.services.saga`) leaves a :class:`SagaRun` with one
:class:`SagaStep` per step, updated as the steps run and as they are compensated, so that
``manage.py recover_sagas`` can finish or undo a run whose process died mid-way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class ExactJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, but times keep their microseconds (rows restored by a compensation
    must come back exactly as they were)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, (dt.datetime, dt.time)):
            text = o.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return super().default(o)


class SagaRun(models.Model):
    """One execution of a saga (e.g. one registration)."""

    class Status(models.TextChoices):
        RUNNING = "running", "running"
        COMPLETED = "completed", "completed"
        COMPENSATING = "compensating", "compensating"
        COMPENSATED = "compensated", "compensated"
        #: A compensation failed; recover_sagas retries it.
        FAILED = "failed", "failed"

    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    #: The saga's input, enough for recover_sagas to rebuild its steps.
    context = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder)
    failed_step = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")
    recovery_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "core_saga_run"
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "updated_at"], name="core_saga_status_updated")]

    def __str__(self) -> str:
        return f"saga {self.name} #{self.pk} ({self.status})"


class SagaStep(models.Model):
    """One step of a :class:`SagaRun`: what ran where, and what its compensation needs."""

    class Status(models.TextChoices):
        #: Started; its transaction may or may not have committed (a crash leaves it here).
        STARTED = "started", "started"
        DONE = "done", "done"
        #: Failed inside its own transaction: nothing of it was committed.
        FAILED = "failed", "failed"
        COMPENSATED = "compensated", "compensated"
        COMPENSATION_FAILED = "compensation_failed", "compensation failed"

    saga = models.ForeignKey(SagaRun, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100)
    alias = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.STARTED)
    #: What the compensation needs (ids written, rows removed), recorded before the step commits.
    payload = models.JSONField(default=dict, blank=True, encoder=ExactJSONEncoder)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    compensated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "core_saga_step"
        ordering = ["saga_id", "position"]
        constraints = [models.UniqueConstraint(fields=["saga", "position"], name="core_saga_step_position")]

    def __str__(self) -> str:
        return f"{self.name}@{self.alias} ({self.status})"


class IdempotencyRecord(models.Model):
    """The first answer to a request sent with an ``Idempotency-Key``, per caller scope."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "in progress"
        COMPLETED = "completed", "completed"

    #: Who sent the key: a hash of the API token (or ``user:<id>``); keys of two callers never meet.
    scope = models.CharField(max_length=100)
    key = models.CharField(max_length=255)
    #: SHA-256 of method, path and the canonical JSON body.
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=ExactJSONEncoder)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "core_idempotency_record"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="core_idempotency_scope_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status})"
