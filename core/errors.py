"""Domain errors raised by services and selectors.

Services never import DRF; ``api/exceptions.py`` turns these (and Django's own
``ValidationError``, ``ObjectDoesNotExist``, ``DatabaseError``) into Problem Details answers.
"""

from __future__ import annotations


class SwitchyardError(Exception):
    """Base class of the domain errors."""


class NotFound(SwitchyardError):
    """The thing asked for does not exist (HTTP 404)."""

    def __init__(self, what: str, ident: object) -> None:
        self.what = what
        self.ident = ident
        super().__init__(f"{what} {ident} does not exist")


class SourceUnavailable(SwitchyardError):
    """A database the answer cannot do without is down or too slow (HTTP 503)."""

    def __init__(self, alias: str, reason: str = "unavailable") -> None:
        self.alias = alias
        self.reason = reason
        super().__init__(f"database {alias} is {reason}")


class QueryTimeout(SwitchyardError):
    """A query ran out of its statement timeout (HTTP 503, ``query-timeout``): the database is
    up, this request's work was too much for it (core.statement_timeout)."""

    def __init__(self, alias: str, milliseconds: int) -> None:
        self.alias = alias
        self.milliseconds = milliseconds
        super().__init__(f"a query on {alias} ran longer than {milliseconds} ms")


class Conflict(SwitchyardError):
    """The request conflicts with the current state (HTTP 409 / 422 as the API decides)."""


class FieldErrors(SwitchyardError):
    """Validation failures tied to input fields: ``{"author_id": [("does_not_exist", "message")]}``."""

    def __init__(self, errors: dict[str, list[tuple[str, str]]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{f}: {m}" for f, items in errors.items() for _, m in items))
