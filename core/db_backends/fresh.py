"""One helper for "a fresh connection that bypasses the pool" (issue 12).

A probe must see the database as it is now: a refused connection at once (not after the pool's
wait for a slot), never a connection the current thread already holds (it may be the one that just
broke), and it must leave the pool alone. :func:`fresh_connection` builds a Django connection
wrapper of the alias's own backend from a copy of its settings with the pool removed, optional
short timeouts, no persistence and no health checks, and closes it afterwards. The readiness check
(api/health.py), the replica probe (routers/health.py) and the maintenance/admin probe
(core/services/maintenance.py) all use it. (The breaker's own probes in the backends connect with
the driver directly: they run inside ``get_new_connection``, under the breaker.)
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.utils import load_backend


def fresh_settings(alias: str, timeout: float | None = None, configured: bool = False) -> dict[str, Any]:
    """A copy of the alias's connection settings (the test database names included) with no
    pool; with ``timeout``, connecting and each statement are bounded by it.

    By default those of this thread's connection to ``alias`` (what the code is using now);
    ``configured``: those of ``settings.DATABASES`` (what is configured: the readiness check)."""
    if configured:
        # The same dicts the connection handler uses (a test run sees the test database names).
        db = copy.deepcopy(settings.DATABASES[alias])
        others = {} if alias == DEFAULT_DB_ALIAS else {DEFAULT_DB_ALIAS: {"ENGINE": "django.db.backends.dummy"}}
        db = connections.configure_settings({**others, alias: db})[alias]
    else:
        db = copy.deepcopy(connections[alias].settings_dict)
    options = db.setdefault("OPTIONS", {})
    options.pop("pool", None)
    db["CONN_MAX_AGE"] = 0
    db["CONN_HEALTH_CHECKS"] = False
    if timeout is None:
        return db
    engine = db["ENGINE"]
    whole = max(1, math.ceil(timeout))
    if "postgresql" in engine:
        options["connect_timeout"] = max(2, whole)  # libpq treats anything below 2 as 2
        statement = f"-c statement_timeout={int(timeout * 1000)}"
        options["options"] = f"{options['options']} {statement}" if options.get("options") else statement
    elif "mysql" in engine:
        options["connect_timeout"] = whole
        options["read_timeout"] = whole
        options["write_timeout"] = whole
    elif "sqlite" in engine:
        options["timeout"] = timeout
        # A probe must not take the write lock or switch journal modes.
        options.pop("transaction_mode", None)
        options.pop("init_command", None)
    return db


@contextlib.contextmanager
def fresh_connection(alias: str, timeout: float | None = None, configured: bool = False) -> Iterator[Any]:
    """A new, unpooled connection wrapper for ``alias`` (connected on first use), closed afterwards;
    closing a broken one never raises. ``timeout``, ``configured``: see :func:`fresh_settings`."""
    db = fresh_settings(alias, timeout, configured)
    wrapper = load_backend(db["ENGINE"]).DatabaseWrapper(db, alias)
    try:
        yield wrapper
    finally:
        try:
            wrapper.close()
        except Exception:  # noqa: BLE001, S110 - closing a broken connection may fail too
            pass


def select_one(alias: str, timeout: float | None = None, configured: bool = False) -> Any:
    """``SELECT 1`` on a fresh connection; returns the row, raises the database's error."""
    with fresh_connection(alias, timeout, configured) as wrapper, wrapper.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()
