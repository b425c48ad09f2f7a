"""Writes of analytics events (analytics_db): one at a time, or a batch written all or nothing.

A batch is validated whole before anything is written, then written inside one transaction: on
PostgreSQL with one ``COPY ... FROM STDIN``, elsewhere with multi-row ``INSERT`` statements
(``bulk_create`` in chunks of :data:`INSERT_CHUNK` rows); never one statement per event.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from core import instrumentation
from core.analytics.models import AnalyticsEvent
from core.errors import FieldErrors
from core.users.fence import missing_message, users_fenced

#: Rows per multi-row INSERT statement.
INSERT_CHUNK = 1_000


def has_control_characters(text: str) -> bool:
    """Control, format (zero-width), separator other than the space, or unassigned characters:
    never part of an event type (``str.isprintable``, fast enough for 10,000 events)."""
    return not text.isprintable()


CONTROL_MESSAGE = "Control and invisible characters are not allowed."


def events_name_users() -> bool:
    """True when events must name existing users: ``USER_DELETION_ANALYTICS=delete`` (a user's
    deletion deletes their events, so an event may not outlive its user). With ``anonymise`` an
    event's ``user_id`` is what the client said, and a deletion sets it to NULL."""
    return settings.USER_DELETION_ANALYTICS == "delete"


def events_user_fence(user_ids: Iterable[int | None], *, field: str, on_missing: Any = None) -> Any:
    """The users fence (:mod:`core.users.fence`) around an event write in delete mode; nothing otherwise."""
    if not events_name_users():
        return contextlib.nullcontext()
    return users_fenced(user_ids, field=field, on_missing=on_missing)


def events_delete_for_users(*, user_ids: Iterable[int]) -> int:
    """Delete every event of the given users (the reference checker's ``--fix`` in delete mode);
    returns how many. One statement per call."""
    ids = sorted({int(i) for i in user_ids})
    if not ids:
        return 0
    deleted, _ = AnalyticsEvent.objects.filter(user_id__in=ids).delete()
    return deleted


def _build(fields: Mapping[str, Any]) -> AnalyticsEvent:
    return AnalyticsEvent(
        event_type=fields["event_type"],
        user_id=fields.get("user_id"),
        session_id=fields.get("session_id") or "",
        timestamp=fields.get("timestamp") or timezone.now(),
        data=fields.get("data") if fields.get("data") is not None else {},
    )


def event_create(
    *,
    event_type: str,
    user_id: int | None = None,
    session_id: str = "",
    timestamp: dt.datetime | None = None,
    data: dict[str, Any] | None = None,
) -> AnalyticsEvent:
    event = _build(
        {"event_type": event_type, "user_id": user_id, "session_id": session_id, "timestamp": timestamp, "data": data}
    )
    if isinstance(event_type, str) and has_control_characters(event_type):
        raise FieldErrors({"event_type": [("invalid", CONTROL_MESSAGE)]})
    if isinstance(event.timestamp, dt.datetime) and timezone.is_aware(event.timestamp):
        problem = timestamp_problem(event.timestamp)
        if problem:
            raise FieldErrors({"timestamp": [problem]})
    event.full_clean()
    with events_user_fence([event.user_id], field="user_id"):
        event.save()
    return event


BIGINT_MAX = 2**63 - 1
EARLIEST_EVENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def timestamp_problem(moment: dt.datetime) -> tuple[str, str] | None:
    """An event's time must be plausible: not before 2000, not more than
    ``EVENT_MAX_FUTURE_SECONDS`` ahead of the server's clock (clients' clocks drift a little; an
    event from year 9999 would stay first in every newest-first list and in every 24 h figure)."""
    if moment < EARLIEST_EVENT:
        return ("min_value", "Must not be before 2000-01-01T00:00:00Z.")
    ahead = dt.timedelta(seconds=settings.EVENT_MAX_FUTURE_SECONDS)
    if moment > timezone.now() + ahead:
        return ("max_value", f"Must not be more than {int(ahead.total_seconds())} seconds in the future.")
    return None


def _batch_errors(event: AnalyticsEvent) -> dict[str, tuple[str, str]]:
    """The model's field rules, checked directly: ``full_clean`` costs ~50 us per event, too much
    for 10,000 of them (the API has already validated the same rules once)."""
    errors: dict[str, tuple[str, str]] = {}
    meta = AnalyticsEvent._meta
    limits = {name: meta.get_field(name).max_length for name in ("event_type", "session_id")}
    if not isinstance(event.event_type, str) or not event.event_type:
        errors["event_type"] = ("blank", "This field cannot be blank.")
    elif len(event.event_type) > limits["event_type"]:
        errors["event_type"] = ("max_length", f"At most {limits['event_type']} characters.")
    elif has_control_characters(event.event_type):
        errors["event_type"] = ("invalid", CONTROL_MESSAGE)
    if not isinstance(event.session_id, str) or len(event.session_id) > limits["session_id"]:
        errors["session_id"] = ("max_length", f"At most {limits['session_id']} characters.")
    if event.user_id is not None and (
        isinstance(event.user_id, bool) or not isinstance(event.user_id, int) or not 1 <= event.user_id <= BIGINT_MAX
    ):
        errors["user_id"] = ("invalid", f"Must be an integer from 1 to {BIGINT_MAX}.")
    if not isinstance(event.timestamp, dt.datetime) or timezone.is_naive(event.timestamp):
        errors["timestamp"] = ("invalid", "Must be a timezone-aware datetime.")
    else:
        problem = timestamp_problem(event.timestamp)
        if problem:
            errors["timestamp"] = problem
    if not isinstance(event.data, dict):
        errors["data"] = ("invalid", "Must be a JSON object.")
    return errors


def event_batch_create(*, events: Sequence[Mapping[str, Any]]) -> int:
    """Validate every event, then write all of them or none. Returns how many were written."""
    most = settings.EVENT_BATCH_MAX_EVENTS
    if len(events) > most:
        raise FieldErrors({"events": [("max_length", f"At most {most} events per batch.")]})
    built: list[AnalyticsEvent] = []
    errors: dict[str, list[tuple[str, str]]] = {}
    for index, fields in enumerate(events):
        event = _build(fields)
        for field, (code, message) in _batch_errors(event).items():
            errors[f"events[{index}].{field}"] = [(code, message)]
        built.append(event)
    if errors:
        raise FieldErrors(errors)
    if not built:
        return 0
    db = router.db_for_write(AnalyticsEvent)

    def unknown(missing: list[int]) -> FieldErrors:
        gone = set(missing)
        return FieldErrors(
            {
                f"events[{index}].user_id": [("does_not_exist", missing_message(event.user_id))]
                for index, event in enumerate(built)
                if event.user_id in gone
            }
        )

    # In delete mode one locking query on users_db for the whole batch (core.users.fence).
    with events_user_fence([e.user_id for e in built], field="events", on_missing=unknown):
        with transaction.atomic(using=db):
            if connections[db].vendor == "postgresql":
                _copy(built, db)
            else:
                AnalyticsEvent.objects.bulk_create(built, batch_size=INSERT_CHUNK)
    return len(built)


def _copy(events: Sequence[AnalyticsEvent], db: str) -> None:
    """``COPY analytics_event (...) FROM STDIN`` with psycopg, values prepared as Django would.

    COPY does not go through Django's execute wrappers, so its time is recorded here for
    Server-Timing and the metrics listeners.
    """
    connection = connections[db]
    fields = [f for f in AnalyticsEvent._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(AnalyticsEvent._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    started = time.perf_counter()
    failed = True
    try:
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for event in events:
                    copy.write_row([f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields])
        failed = False
    finally:
        instrumentation.record(db, time.perf_counter() - started, failed)


def events_delete_for_user(*, user_id: int) -> int:
    """Delete every event of ``user_id`` (one statement); returns how many. The rollups follow in
    the same transaction through their triggers (core/analytics/rollups.py), so callers such as
    user deletion need no bookkeeping of their own."""
    deleted, _ = AnalyticsEvent.objects.filter(user_id=user_id).delete()
    return deleted


def events_anonymise_for_user(*, user_id: int) -> int:
    """Set ``user_id`` to NULL on every event of ``user_id`` (one statement); returns how many.
    The per-user rollup loses them and the daily ones keep them, through the triggers."""
    return AnalyticsEvent.objects.filter(user_id=user_id).update(user_id=None)
