"""Database alias names: the one module that spells them.

Everything else imports these constants instead of writing ``"users_db"`` by hand.
"""

from typing import Final

DEFAULT: Final = "default"
USERS: Final = "users_db"
ANALYTICS: Final = "analytics_db"
LEGACY: Final = "legacy_db"
CACHE: Final = "cache_db"

#: Every primary alias, in the order ``migrate_all`` visits them.
PRIMARIES: Final = (DEFAULT, USERS, ANALYTICS, LEGACY, CACHE)

#: Environment variable holding each primary's URL.
URL_ENV: Final = {
    DEFAULT: "DATABASE_URL",
    USERS: "USERS_DATABASE_URL",
    ANALYTICS: "ANALYTICS_DATABASE_URL",
    LEGACY: "LEGACY_DATABASE_URL",
    CACHE: "CACHE_DATABASE_URL",
}

#: SQLite file (under ``var/``) used for each primary when its URL is not set.
EMBEDDED_FILE: Final = {
    DEFAULT: "default.sqlite3",
    USERS: "users.sqlite3",
    ANALYTICS: "analytics.sqlite3",
    LEGACY: "legacy.sqlite3",
    CACHE: "cache.sqlite3",
}

REPLICA_MARK: Final = "_replica_"


def replica_env(primary: str) -> str:
    """``DATABASE_URL`` -> ``DATABASE_REPLICA_URLS``, ``USERS_DATABASE_URL`` -> ``USERS_DATABASE_REPLICA_URLS``."""
    return URL_ENV[primary].removesuffix("_URL") + "_REPLICA_URLS"


def replica_alias(primary: str, index: int) -> str:
    """The alias of the ``index``-th (1-based) replica of ``primary``: ``default_replica_1``."""
    return f"{primary}{REPLICA_MARK}{index}"


def primary_of(alias: str) -> str:
    """The primary alias behind ``alias`` (itself for a primary)."""
    head, mark, tail = alias.rpartition(REPLICA_MARK)
    if mark and tail.isdigit():
        return head
    return alias
