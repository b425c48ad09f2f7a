"""Per-request routing state, kept in context variables.

Nothing here is a module-level mutable shared between requests: each request (and each task or
thread that does not explicitly copy the context) starts from a fresh :class:`RoutingState`.
The only process-wide state is the replica health record (:mod:`routers.health`) and the
round-robin counter, which are not per-request facts.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class RoutingState:
    """What the routers know about the current request."""

    #: primary alias -> replica alias (or the primary) chosen for this request's reads
    replica_choice: dict[str, str] = field(default_factory=dict)
    #: primaries written during this request (reads go to them from then on)
    written: set[str] = field(default_factory=set)
    #: primaries pinned by the client's cookie/header, with the monotonic-free wall-clock expiry
    pinned_until: dict[str, float] = field(default_factory=dict)
    #: aliases touched during the request (Server-Timing): alias -> [query count, seconds]
    timings: dict[str, list[float]] = field(default_factory=dict)
    #: replicas whose connection failed during the request (see routers.health.replica_guard)
    failed_replicas: set[str] = field(default_factory=set)


_state: contextvars.ContextVar[RoutingState | None] = contextvars.ContextVar("switchyard_routing_state", default=None)
_force_primary: contextvars.ContextVar[int] = contextvars.ContextVar("switchyard_force_primary", default=0)
_legacy_writes: contextvars.ContextVar[bool] = contextvars.ContextVar("switchyard_legacy_writes", default=False)


def current() -> RoutingState:
    """The state of the current context, created on first use."""
    state = _state.get()
    if state is None:
        state = RoutingState()
        _state.set(state)
    return state


def begin(state: RoutingState | None = None) -> contextvars.Token:
    """Start a fresh state (at the start of a request); returns the token for :func:`end`."""
    return _state.set(state if state is not None else RoutingState())


def end(token: contextvars.Token) -> None:
    """Restore the state that was current before :func:`begin`."""
    _state.reset(token)


def reset() -> None:
    """Forget all routing state of the current context (tests, management commands)."""
    _state.set(None)
    _force_primary.set(0)
    _legacy_writes.set(False)


def note_write(primary: str) -> None:
    current().written.add(primary)


def is_pinned(primary: str) -> bool:
    """True when reads of ``primary`` must go to the primary itself."""
    if _force_primary.get() > 0:
        return True
    state = _state.get()
    if state is None:
        return False
    if primary in state.written:
        return True
    until = state.pinned_until.get(primary)
    return until is not None and until > time.time()


class use_primary(contextlib.ContextDecorator):
    """Send every read to its primary inside this block (context manager or decorator)."""

    def __enter__(self) -> use_primary:
        self._token = _force_primary.set(_force_primary.get() + 1)
        return self

    def __exit__(self, *exc: object) -> None:
        _force_primary.reset(self._token)


def legacy_writes_allowed() -> bool:
    return _legacy_writes.get()


@contextlib.contextmanager
def allow_legacy_writes() -> Iterator[None]:
    """Allow writes to the legacy database inside this block (seeding, tests), whatever the setting."""
    token = _legacy_writes.set(True)
    try:
        yield
    finally:
        _legacy_writes.reset(token)


@contextlib.contextmanager
def isolated() -> Iterator[RoutingState]:
    """Run a block with its own fresh routing state (used by worker threads and tests)."""
    token = begin()
    try:
        yield current()
    finally:
        end(token)


def with_context(fn: F) -> F:
    """Wrap ``fn`` so that it runs in a copy of the caller's context (for thread pools)."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def runner(*args: Any, **kwargs: Any) -> Any:
        return ctx.copy().run(fn, *args, **kwargs)

    return runner  # type: ignore[return-value]
