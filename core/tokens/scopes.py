"""The scopes an API token may hold, and what each allows (docs/security.md)."""

from __future__ import annotations

READ = "read"
POSTS_WRITE = "posts:write"
EVENTS_WRITE = "events:write"
USERS_WRITE = "users:write"
REGISTRATIONS_WRITE = "registrations:write"
LEGACY_WRITE = "legacy:write"
PII_READ = "pii:read"
ADMIN = "admin"

#: Every scope, in the order they are documented.
ALL: tuple[str, ...] = (
    READ,
    POSTS_WRITE,
    EVENTS_WRITE,
    USERS_WRITE,
    REGISTRATIONS_WRITE,
    LEGACY_WRITE,
    PII_READ,
    ADMIN,
)

DESCRIPTIONS: dict[str, str] = {
    READ: "Every GET except those needing `admin`; personal data stays null without `pii:read`.",
    POSTS_WRITE: "Create, change and delete posts (a bound token: only its user's); read posts.",
    EVENTS_WRITE: "Record analytics events (a bound token: only with its user id or none); read events.",
    USERS_WRITE: "Create, change and delete users (staff accounts only); read users (personal data null without "
    "`pii:read`).",
    REGISTRATIONS_WRITE: "Register users (user, profile and event as one unit).",
    LEGACY_WRITE: "Write legacy customers, where the server allows it (staff accounts only); read them (names "
    "and emails null without `pii:read`).",
    PII_READ: "Read emails and personal names of other users and of legacy customers; filter, search and "
    "order on them.",
    ADMIN: "The databases' overview and slow queries (staff accounts only).",
}

#: Scopes that take effect only while the token's account is staff (they were staff-only before
#: scopes existed): a demoted account loses them at once, whatever its tokens say.
STAFF_ONLY: frozenset[str] = frozenset({USERS_WRITE, LEGACY_WRITE, ADMIN})

#: Without --scopes a token gets this.
DEFAULT: tuple[str, ...] = (READ,)


def parse(text: str) -> tuple[str, ...]:
    """``"read,posts:write"`` (commas or spaces) -> the scopes in documented order; ValueError naming
    any unknown one."""
    names = {part.strip() for part in text.replace(",", " ").split() if part.strip()}
    unknown = sorted(names - set(ALL))
    if unknown:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
    return tuple(scope for scope in ALL if scope in names)
