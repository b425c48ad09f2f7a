"""Per-database circuit breaker for opening connections (see :mod:`core.db_backends`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

_lock = threading.Lock()

#: A failed attempt to connect quicker than this was refused, not timed out (see ``Breaker.window``).
FAST_FAILURE_SECONDS = 0.25
#: Longest a caller waits for another caller's probe before it is refused.
PROBE_WAIT_SECONDS = 0.25
_breakers: dict[tuple, Breaker] = {}


@dataclass
class Breaker:
    """State of one database server (keyed by alias and where it points)."""

    alias: str
    #: a connection to this server has succeeded in this process (before that, a pool would wait
    #: its whole timeout for a server that refuses connections: probe it directly first)
    connected_once: bool = False
    failed_at: float | None = None
    last_error: str = ""
    probing: bool = False
    #: the last failure came at once (refused, or the server starting up): probing is cheap
    fast: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        #: signalled when a probe ends (see :meth:`allow`)
        self.probed = threading.Condition(self.lock)

    def window(self) -> float:
        """How long connections are refused after a failure without trying.

        ``DB_BREAKER_SECONDS`` after a slow failure (a timeout: each attempt would hold a thread
        that long). No window after a fast one (connection refused, the server starting up): every
        attempt probes the server first, which costs a refused connection, and the first one after
        the server is back gets through. A window there would go on refusing requests after the
        server is ready, a gunicorn worker at a time, since each keeps its own breaker."""
        return 0.0 if self.fast else float(getattr(settings, "DB_BREAKER_SECONDS", 2.0))

    def allow(self, probe: Callable[[], None]) -> None:
        """Return when a connection may be tried; raise ``BreakerOpen`` to fail fast."""
        with self.lock:
            if self.failed_at is None:
                return
            age = time.monotonic() - self.failed_at
            if age < self.window():
                raise BreakerOpen(self.alias, self.last_error, self.window() - age)
            if self.probing and not self.fast:
                # Another caller is probing: a server that answers at all answers it in moments,
                # so wait that long for its verdict rather than refuse a request it may clear.
                self.probed.wait_for(lambda: not self.probing, timeout=PROBE_WAIT_SECONDS)
                if self.failed_at is None:
                    return
                raise BreakerOpen(self.alias, self.last_error, 0.0)
            self.probing = True
        started = time.monotonic()
        try:
            probe()
        except Exception as exc:
            self.failure(exc, time.monotonic() - started)
            raise BreakerOpen(self.alias, str(exc), self.window()) from exc
        else:
            self.success()
        finally:
            with self.lock:
                self.probing = False
                self.probed.notify_all()

    def failure(self, exc: BaseException, seconds: float | None = None) -> None:
        """Remember a failure to connect; ``seconds``: how long the attempt took, when known."""
        with self.lock:
            self.failed_at = time.monotonic()
            self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.fast = _starting_up(exc) or (seconds is not None and seconds < FAST_FAILURE_SECONDS)

    def success(self) -> None:
        with self.lock:
            self.connected_once = True
            self.failed_at = None
            self.last_error = ""
            self.fast = False

    def first_contact(self, probe: Callable[[], None]) -> None:
        """Before the first connection of this process goes through a pool: probe the server on a
        fresh connection (refused at once when it is down) instead of waiting the pool's timeout."""
        if self.connected_once:
            return
        started = time.monotonic()
        try:
            probe()
        except Exception as exc:
            self.failure(exc, time.monotonic() - started)
            raise BreakerOpen(self.alias, str(exc), self.window()) from exc


def _starting_up(exc: BaseException) -> bool:
    """A failure that says by itself that it came at once, whatever the clock said (a loaded machine
    can take longer than ``FAST_FAILURE_SECONDS`` to report even a refusal): PostgreSQL's
    ``cannot_connect_now`` (57P03, starting up or recovering), a server shutting down, or a refused
    connection (nothing listens yet)."""
    if getattr(exc, "sqlstate", None) == "57P03":
        return True
    text = str(exc)
    return any(
        sign in text
        for sign in ("is starting up", "not yet accepting connections", "is shutting down", "Connection refused")
    )


class BreakerOpen(Exception):
    """Raised (wrapped as the driver's OperationalError by the backends) while a database is known down."""

    def __init__(self, alias: str, last_error: str, retry_in: float) -> None:
        self.alias = alias
        self.retry_in = retry_in
        super().__init__(
            f"database {alias} is unavailable (connections failed recently: {last_error or 'unknown error'})"
            + (f"; not retrying for {retry_in:.1f}s" if retry_in > 0 else "")
        )


def breaker_for(alias: str, settings_dict: dict) -> Breaker:
    key = (alias, settings_dict.get("HOST"), str(settings_dict.get("PORT")), settings_dict.get("NAME"))
    with _lock:
        breaker = _breakers.get(key)
        if breaker is None:
            breaker = _breakers[key] = Breaker(alias)
        return breaker


def reset_all() -> None:
    """Forget every failure (tests); which servers were reached once is kept."""
    with _lock:
        for breaker in _breakers.values():
            breaker.failed_at = None
            breaker.last_error = ""


def is_open(alias: str) -> bool:
    """True when an attempt to connect to ``alias`` failed within ``DB_BREAKER_SECONDS`` and none
    has succeeded since (used by health reports and the fan-out), whether or not attempts are
    refused meanwhile (see ``Breaker.window``)."""
    with _lock:
        candidates = [b for key, b in _breakers.items() if key[0] == alias]
    now = time.monotonic()
    window = float(getattr(settings, "DB_BREAKER_SECONDS", 2.0))
    return any(b.failed_at is not None and now - b.failed_at < window for b in candidates)


def failing_aliases() -> dict[str, bool]:
    """Each alias this process has a breaker for, and whether its last attempt to connect failed
    (the breaker refuses or probes until one succeeds): read by the metrics at scrape time."""
    with _lock:
        breakers = list(_breakers.values())
    state: dict[str, bool] = {}
    for breaker in breakers:
        state[breaker.alias] = state.get(breaker.alias, False) or breaker.failed_at is not None
    return state
