"""Sagas: one use case that writes several databases, without a distributed transaction.

A saga is a list of :class:`Step` s, each on one database alias. The engine (:func:`run`):

1. writes a :class:`~core.models.SagaRun` on ``default`` with the saga's input (``context``);
2. for each step, writes a :class:`~core.models.SagaStep` (``started``), then runs the step's
   action inside ``transaction.atomic(using=step.alias)`` with the step's time limit
   (``SAGA_STEP_TIMEOUT_MS``: PostgreSQL ``lock_timeout``/``statement_timeout``, SQLite busy
   timeout). The action returns the *payload* its compensation needs (ids written, rows removed);
   the payload is written to the log **before the step's transaction commits**, so the log never
   misses a committed write;
3. marks the step ``done``;
4. when a step fails (any ``Exception``), compensates the steps already done in reverse order, each
   in its own ``atomic(using=alias)``, records that, and raises a domain error naming the step:
   :class:`SagaStepConflict` (409), :class:`SagaStepInvalid` (400), :class:`SagaStepUnavailable` (503).

A process that dies mid-way (``kill -9``, OOM, a ``BaseException`` such as ``KeyboardInterrupt``)
leaves its run ``running``; ``manage.py recover_sagas`` later finishes it (definitions with
``on_recovery="complete"``) or undoes it (``"compensate"``, the default). Because a ``started`` step
may or may not have committed, compensations must be idempotent and must match rows by
identity (id *and* a natural key), never by id alone.

Definitions are registered by name with :func:`register` so that recovery can rebuild the steps of
a run from its stored context; modules holding definitions are listed in :data:`SAGA_MODULES`.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import importlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.db.models import F
from django.utils import timezone

from core import aliases
from core.errors import Conflict, FieldErrors, SourceUnavailable, SwitchyardError
from core.models import SagaRun, SagaStep

log = logging.getLogger("switchyard.saga")

#: Modules whose import registers saga definitions (recover_sagas imports them).
SAGA_MODULES = ("core.services.registration", "core.services.user_deletion")

COMPENSATE = "compensate"
COMPLETE = "complete"


# ---------------------------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------------------------
@dataclass
class StepContext:
    """What a step's action sees."""

    saga_id: int
    #: The saga's input (JSON, as stored on the run).
    context: dict[str, Any]
    #: Payloads of the steps done so far, by step name.
    results: dict[str, dict[str, Any]]
    #: In-memory objects handed from step to step (model instances for the caller's answer).
    objects: dict[str, Any]
    #: The payload this step recorded on an earlier attempt (recovery re-runs), else ``{}``.
    previous: dict[str, Any] = field(default_factory=dict)


Action = Callable[[StepContext], dict[str, Any] | None]
Compensation = Callable[[dict[str, Any], dict[str, Any]], None]  # (payload, saga context)


@dataclass(frozen=True)
class Step:
    name: str
    alias: str
    action: Action
    compensate: Compensation | None = None
    #: A context manager entered around the step's transaction, so it is held until the step has
    #: committed (e.g. the users fence of :mod:`core.users.fence` for a step writing a row that
    #: names a user). Built from the step's context; ``None``: no fence.
    fence: Callable[[StepContext], contextlib.AbstractContextManager[Any]] | None = None


@dataclass(frozen=True)
class SagaDefinition:
    name: str
    #: Builds the steps from the saga's context (called again by recovery).
    build: Callable[[dict[str, Any]], list[Step]]
    #: What recover_sagas does with a run left ``running``: undo it, or finish it.
    on_recovery: str = COMPENSATE


REGISTRY: dict[str, SagaDefinition] = {}


def register(definition: SagaDefinition) -> SagaDefinition:
    if definition.on_recovery not in (COMPENSATE, COMPLETE):
        raise ValueError(f"on_recovery must be {COMPENSATE!r} or {COMPLETE!r}")
    REGISTRY[definition.name] = definition
    return definition


def load_definitions() -> dict[str, SagaDefinition]:
    for module in SAGA_MODULES:
        importlib.import_module(module)
    return REGISTRY


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Failure:
    saga: str
    saga_id: int | None
    step: str
    alias: str
    #: True when every step done before the failure was undone.
    compensated: bool


class SagaStepFailed(SwitchyardError):
    """Base of the errors :func:`run` raises; ``failure`` names the saga, step and alias."""

    failure: Failure
    #: The database of the failed step.
    alias: str

    @property
    def step(self) -> str:
        return self.failure.step


class SagaStepConflict(SagaStepFailed, Conflict):
    """A step hit a uniqueness or other integrity constraint (HTTP 409)."""

    def __init__(self, failure: Failure, message: str, *, field: str = "") -> None:
        Exception.__init__(self, message)
        self.failure = failure
        self.alias = failure.alias
        self.field = field


class SagaStepInvalid(SagaStepFailed, FieldErrors):
    """A step refused its input (HTTP 400)."""

    def __init__(self, failure: Failure, errors: dict[str, list[tuple[str, str]]]) -> None:
        FieldErrors.__init__(self, errors)
        self.failure = failure
        self.alias = failure.alias


class SagaStepUnavailable(SagaStepFailed, SourceUnavailable):
    """A step's database was unreachable or did not answer within the step's time limit (HTTP 503)."""

    def __init__(self, failure: Failure, reason: str) -> None:
        SourceUnavailable.__init__(self, failure.alias, reason)
        self.failure = failure


_UNIQUE_FIELD = (
    re.compile(
        r"Key \((?:lower\()?\"?(\w+)\"?(?:::\w+)?\)?\)=", re.IGNORECASE
    ),  # PostgreSQL (lower(username::text) too)
    re.compile(r"UNIQUE constraint failed: \w+\.(\w+)"),  # SQLite
    re.compile(r"UNIQUE constraint failed: index '\w*?_(username|email)_\w*'"),  # SQLite, an expression index
    re.compile(r"Duplicate entry .* for key '(?:\w+\.)?(\w+)'"),  # MySQL/MariaDB
)
_TIMEOUT_MARKERS = ("lock timeout", "statement timeout", "canceling statement", "database is locked", "timed out")


def _field_of(exc: BaseException) -> str:
    text = str(exc)
    for pattern in _UNIQUE_FIELD:
        match = pattern.search(text)
        if match:
            # A ``<field>_skeleton`` column is the unique look-alike key of ``<field>`` (users_db's
            # username_skeleton): the field the client sent is the one named.
            return match.group(1).removesuffix("_skeleton")
    return ""


def _classify(exc: Exception, failure: Failure) -> SagaStepFailed | None:
    """The domain error for a step's exception; None for errors that are bugs (re-raised as they are)."""
    where = f"step {failure.step} of {failure.saga} on {failure.alias}"
    undone = "earlier steps were undone" if failure.compensated else "undoing earlier steps is pending (recover_sagas)"
    if isinstance(exc, FieldErrors) and not isinstance(exc, SagaStepFailed):
        return SagaStepInvalid(failure, exc.errors)  # a service's own check inside the step
    if isinstance(exc, ValidationError):
        errors = (
            {
                name: [(getattr(e, "code", None) or "invalid", str(m)) for e in errs for m in e.messages]
                for name, errs in exc.error_dict.items()
            }
            if hasattr(exc, "error_dict")
            else {"non_field_errors": [("invalid", m) for m in exc.messages]}
        )
        return SagaStepInvalid(failure, errors)
    if isinstance(exc, IntegrityError):
        column = _field_of(exc)
        what = f"{column} already exists" if column else "a constraint was violated"
        return SagaStepConflict(failure, f"{where} failed: {what}; {undone}", field=column)
    if isinstance(exc, DataError):
        return SagaStepInvalid(failure, {"non_field_errors": [("invalid", f"{where} refused the data: {exc}")]})
    if isinstance(exc, (OperationalError, InterfaceError)):
        text = str(exc).lower()
        kind = "timed out" if any(m in text for m in _TIMEOUT_MARKERS) else "unreachable"
        return SagaStepUnavailable(failure, f"{kind} during {where}; {undone}")
    return None


# ---------------------------------------------------------------------------------------------
# Test hooks: simulate a crash at a precise point (never used by production code)
# ---------------------------------------------------------------------------------------------
Hook = Callable[[str, str], None]  # (point, step name); points: "before", "before_commit", "after"
_hook: contextvars.ContextVar[Hook | None] = contextvars.ContextVar("switchyard_saga_hook", default=None)


@contextlib.contextmanager
def step_hook(hook: Hook) -> Iterator[None]:
    """Call ``hook(point, step_name)`` at each step boundary inside this block (tests)."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        _hook.reset(token)


def _call_hook(point: str, step: str) -> None:
    hook = _hook.get()
    if hook is not None:
        hook(point, step)


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def step_transaction(alias: str) -> Iterator[None]:
    """``transaction.atomic(using=alias)`` with the step time limit applied to lock waits and statements."""
    connection = connections[alias]
    limit_ms = max(1, int(settings.SAGA_STEP_TIMEOUT_MS))
    if connection.vendor == "sqlite":
        # SQLite waits for the write lock when the IMMEDIATE transaction begins: bound that wait.
        connection.ensure_connection()
        connection.connection.execute(f"PRAGMA busy_timeout = {limit_ms}")
        try:
            with transaction.atomic(using=alias):
                yield
        finally:
            if connection.connection is not None:
                restore = int(float(connection.settings_dict["OPTIONS"].get("timeout", 5)) * 1000)
                connection.connection.execute(f"PRAGMA busy_timeout = {restore}")
        return
    with transaction.atomic(using=alias):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                    [f"{limit_ms}ms", f"{limit_ms}ms"],
                )
        elif connection.vendor == "mysql":
            with connection.cursor() as cursor:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = %s", [max(1, limit_ms // 1000)])
        yield


def _log(fn: Callable[[], Any]) -> bool:
    """Write to the saga log in its own savepoint; a failure is logged, never raised (best effort)."""
    try:
        with transaction.atomic(using=aliases.DEFAULT):
            fn()
        return True
    except DatabaseError:
        log.exception("could not update the saga log")
        return False


def _touch(run_id: int, **fields: Any) -> None:
    SagaRun.objects.filter(pk=run_id).update(updated_at=timezone.now(), **fields)


def _mark_step(step_id: int, status: str, **fields: Any) -> None:
    SagaStep.objects.filter(pk=step_id).update(status=status, **fields)


def _execute(step: Step, run_id: int, row_id: int, ctx: StepContext) -> dict[str, Any]:
    fence = step.fence(ctx) if step.fence is not None else contextlib.nullcontext()
    with fence, step_transaction(step.alias):
        payload = step.action(ctx) or {}
        # Recorded before the step's transaction commits: a committed write is always in the log.
        SagaStep.objects.filter(pk=row_id).update(payload=payload)
        _call_hook("before_commit", step.name)
    return payload


@dataclass
class _Done:
    step: Step
    row_id: int
    payload: dict[str, Any]


def _compensate(run_id: int, done: list[_Done], context: dict[str, Any]) -> bool:
    """Undo ``done`` in reverse order; True when every compensation succeeded."""
    _log(lambda: _touch(run_id, status=SagaRun.Status.COMPENSATING))
    ok = True
    for item in reversed(done):
        try:
            if item.step.compensate is not None:
                with step_transaction(item.step.alias):
                    item.step.compensate(item.payload, context)
        except Exception as exc:  # noqa: BLE001 - recorded, and the run stays failed for recover_sagas
            ok = False
            log.warning("compensation of %s on %s failed: %s", item.step.name, item.step.alias, exc)
            reason = str(exc)[:2000]
            _log(lambda: _mark_step(item.row_id, SagaStep.Status.COMPENSATION_FAILED, error=reason))
            continue
        _log(lambda: _mark_step(item.row_id, SagaStep.Status.COMPENSATED, compensated_at=timezone.now()))
    final = SagaRun.Status.COMPENSATED if ok else SagaRun.Status.FAILED
    _log(lambda: _touch(run_id, status=final, finished_at=timezone.now() if ok else None))
    return ok


@dataclass
class SagaResult:
    saga_id: int
    #: Payloads by step name.
    results: dict[str, dict[str, Any]]
    #: Objects the steps handed over (model instances).
    objects: dict[str, Any]


def run(definition: SagaDefinition, context: dict[str, Any], *, objects: dict[str, Any] | None = None) -> SagaResult:
    """Run ``definition`` with ``context``; see the module docstring. Raises :class:`SagaStepFailed`.

    ``objects`` seeds :attr:`StepContext.objects` (in-memory only: a recovery run does not see them)."""
    steps = definition.build(context)
    try:
        saga_run = SagaRun.objects.create(name=definition.name, context=context)
    except (OperationalError, InterfaceError) as exc:
        raise SourceUnavailable(aliases.DEFAULT, f"unreachable: the saga log could not be written ({exc})") from exc
    ctx = StepContext(saga_id=saga_run.pk, context=context, results={}, objects=dict(objects or {}))
    done: list[_Done] = []
    return _run_steps(definition, saga_run.pk, steps, ctx, done, start=0, rows={})


def _run_steps(
    definition: SagaDefinition,
    run_id: int,
    steps: list[Step],
    ctx: StepContext,
    done: list[_Done],
    *,
    start: int,
    rows: dict[int, SagaStep],
) -> SagaResult:
    current: Step | None = None
    row_id: int | None = None
    in_step = False
    try:
        for position in range(start, len(steps)):
            current = steps[position]
            in_step = False
            existing = rows.get(position)
            if existing is not None and existing.status == SagaStep.Status.DONE:
                done.append(_Done(current, existing.pk, existing.payload))
                ctx.results[current.name] = existing.payload
                continue
            if existing is not None:
                row_id = existing.pk
                ctx.previous = dict(existing.payload or {})
                _mark_step(row_id, SagaStep.Status.STARTED)
            else:
                row_id = SagaStep.objects.create(
                    saga_id=run_id, position=position, name=current.name, alias=current.alias
                ).pk
                ctx.previous = {}
            _touch(run_id)  # heartbeat: recover_sagas leaves runs that moved recently alone
            _call_hook("before", current.name)
            in_step = True
            payload = _execute(current, run_id, row_id, ctx)
            in_step = False
            done.append(_Done(current, row_id, payload))
            ctx.results[current.name] = payload
            _mark_step(row_id, SagaStep.Status.DONE, finished_at=timezone.now())
            _call_hook("after", current.name)
        _touch(run_id, status=SagaRun.Status.COMPLETED, finished_at=timezone.now())
    except Exception as exc:
        step_name = current.name if current else "start"
        alias = current.alias if (current and in_step) else aliases.DEFAULT
        reason = str(exc)[:2000]
        if row_id is not None and in_step:
            failed_row = row_id
            _log(lambda: _mark_step(failed_row, SagaStep.Status.FAILED, error=reason))
        _log(lambda: _touch(run_id, failed_step=step_name, error=reason))
        compensated = _compensate(run_id, done, ctx.context)
        failure = Failure(definition.name, run_id, step_name, alias, compensated)
        error = _classify(exc, failure)
        log.warning("saga %s #%s failed at %s on %s: %s", definition.name, run_id, step_name, alias, exc)
        if error is None:
            raise
        raise error from exc
    return SagaResult(saga_id=run_id, results=ctx.results, objects=ctx.objects)


# ---------------------------------------------------------------------------------------------
# Recovery
# ---------------------------------------------------------------------------------------------
@dataclass
class Recovered:
    saga_id: int
    name: str
    outcome: str  # "completed", "compensated", "failed", "skipped"
    detail: str = ""


def _claim(saga_run: SagaRun) -> bool:
    """Take a stale run for recovery; False when another process moved it in the meantime."""
    return bool(
        SagaRun.objects.filter(pk=saga_run.pk, updated_at=saga_run.updated_at).update(
            updated_at=timezone.now(), recovery_attempts=F("recovery_attempts") + 1
        )
    )


def _may_have_written(row: SagaStep) -> bool:
    if row.status in (SagaStep.Status.DONE, SagaStep.Status.COMPENSATION_FAILED):
        return True
    # A started step whose payload was recorded may have committed (its payload is written
    # inside its transaction); one without a payload certainly did not.
    return row.status == SagaStep.Status.STARTED and bool(row.payload)


def recover_run(saga_run: SagaRun) -> Recovered:
    """Finish or undo one stale run (see :func:`recover`)."""
    definitions = load_definitions()
    definition = definitions.get(saga_run.name)
    if definition is None:
        return Recovered(saga_run.pk, saga_run.name, "skipped", "no saga definition of that name")
    steps = definition.build(saga_run.context)
    rows = {row.position: row for row in saga_run.steps.all()}
    if saga_run.status == SagaRun.Status.RUNNING and definition.on_recovery == COMPLETE:
        ctx = StepContext(saga_id=saga_run.pk, context=saga_run.context, results={}, objects={})
        try:
            _run_steps(definition, saga_run.pk, steps, ctx, [], start=0, rows=rows)
        except SagaStepFailed as exc:
            outcome = "compensated" if exc.failure.compensated else "failed"
            return Recovered(saga_run.pk, saga_run.name, outcome, str(exc))
        return Recovered(saga_run.pk, saga_run.name, "completed")
    done = [
        _Done(steps[position], row.pk, row.payload)
        for position, row in sorted(rows.items())
        if position < len(steps) and _may_have_written(row)
    ]
    # Steps that never wrote anything are closed as failed so the log reads true.
    for row in rows.values():
        if row.status == SagaStep.Status.STARTED and not row.payload:
            _mark_step(row.pk, SagaStep.Status.FAILED, error="interrupted before writing (recovered)")
    if saga_run.status == SagaRun.Status.RUNNING:
        _touch(saga_run.pk, error=saga_run.error or "interrupted; undone by recover_sagas")
    ok = _compensate(saga_run.pk, done, saga_run.context)
    return Recovered(saga_run.pk, saga_run.name, "compensated" if ok else "failed")


def stale_runs(*, older_than: dt.timedelta) -> list[SagaRun]:
    cutoff = timezone.now() - older_than
    return list(
        SagaRun.objects.filter(
            status__in=[SagaRun.Status.RUNNING, SagaRun.Status.COMPENSATING, SagaRun.Status.FAILED],
            updated_at__lte=cutoff,
        ).order_by("id")
    )


def recover(*, older_than: dt.timedelta, limit: int | None = None) -> list[Recovered]:
    """Finish or undo every run left ``running``/``compensating``/``failed`` for longer than ``older_than``."""
    outcomes: list[Recovered] = []
    for saga_run in stale_runs(older_than=older_than)[:limit]:
        if not _claim(saga_run):
            outcomes.append(Recovered(saga_run.pk, saga_run.name, "skipped", "moved by another process"))
            continue
        saga_run.refresh_from_db()
        outcomes.append(recover_run(saga_run))
    return outcomes
