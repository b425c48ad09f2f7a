"""Per-alias query timing, recorded for every query on every connection.

An execute wrapper is installed on each database connection when it is created; it adds the
query's duration to the current routing state's ``timings`` (alias -> [count, seconds]), which
the ``Server-Timing`` middleware reports and which fan-out worker threads share through their
copied context. Extra listeners (metrics) can subscribe with :func:`add_listener`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db.backends.signals import connection_created

Listener = Callable[[str, float, bool], None]  # alias, seconds, failed
_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def record(alias: str, seconds: float, failed: bool = False) -> None:
    from routers import state

    timings = state.current().timings
    entry = timings.get(alias)
    if entry is None:
        timings[alias] = [1, seconds]
    else:
        entry[0] += 1
        entry[1] += seconds
    for listener in _listeners:
        listener(alias, seconds, failed)


def timing_wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    started = time.perf_counter()
    failed = True
    try:
        result = execute(sql, params, many, context)
        failed = False
        return result
    finally:
        record(context["connection"].alias, time.perf_counter() - started, failed)


def _install(sender: Any, connection: Any, **kwargs: Any) -> None:
    if timing_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.append(timing_wrapper)


def connect() -> None:
    connection_created.connect(_install, dispatch_uid="switchyard-query-timing")
