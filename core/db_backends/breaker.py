"""Per-database circuit breaker for opening connections (see :mod:`core.db_backends`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

_lock = threading.Lock()
_breakers: dict[tuple, "Breaker"] = {}


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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def window(self) -> float:
        return float(getattr(settings, "DB_BREAKER_SECONDS", 2.0))

    def allow(self, probe: Callable[[], None]) -> None:
        """Return when a connection may be tried; raise ``BreakerOpen`` to fail fast."""
        with self.lock:
            if self.failed_at is None:
                return
            age = time.monotonic() - self.failed_at
            if age < self.window() or self.probing:
                raise BreakerOpen(self.alias, self.last_error, max(self.window() - age, 0.0))
            self.probing = True
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - any failure to connect keeps the breaker open
            self.failure(exc)
            raise BreakerOpen(self.alias, str(exc), self.window()) from exc
        else:
            self.success()
        finally:
            with self.lock:
                self.probing = False

    def failure(self, exc: BaseException) -> None:
        with self.lock:
            self.failed_at = time.monotonic()
            self.last_error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def success(self) -> None:
        with self.lock:
            self.connected_once = True
            self.failed_at = None
            self.last_error = ""

    def first_contact(self, probe: Callable[[], None]) -> None:
        """Before the first connection of this process goes through a pool: probe the server on a
        fresh connection (refused at once when it is down) instead of waiting the pool's timeout."""
        if self.connected_once:
            return
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - any failure to connect opens the breaker
            self.failure(exc)
            raise BreakerOpen(self.alias, str(exc), self.window()) from exc


class BreakerOpen(Exception):
    """Raised (wrapped as the driver's OperationalError by the backends) while a database is known down."""

    def __init__(self, alias: str, last_error: str, retry_in: float) -> None:
        self.alias = alias
        self.retry_in = retry_in
        super().__init__(
            f"database {alias} is unavailable (connections failed recently: {last_error or 'unknown error'}); "
            f"not retrying for {retry_in:.1f}s"
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
    """True when ``alias`` failed to connect within the breaker window (used by health reports)."""
    with _lock:
        candidates = [b for key, b in _breakers.items() if key[0] == alias]
    now = time.monotonic()
    return any(b.failed_at is not None and now - b.failed_at < b.window() for b in candidates)
