"""One helper for "a fresh connection that bypasses the pool" (issue 12).

A probe must see the database as it is now: a refused connection at once (not after the pool's
wait for a slot), never a connection the current thread already holds (it may be the one that just
broke), and it must leave the pool alone. :func:`fresh_connection` builds a Django connection
wrapper of the alias's own backend from a copy of its settings with the pool removed, optional
short timeouts, no persistence and no health checks, and closes it afterwards. Its users: the
readiness check (api/health.py), the replica probe (routers/health.py), the maintenance/admin probe
(core/services/maintenance.py) and the circuit breaker's probe in the backends (:func:`probe`,
which builds the same unpooled settings but connects through Django's own backend class, the parent
of ours, since it runs inside our ``get_new_connection``, under the breaker it reports to).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend

#: How long the breaker's probe waits for the server to accept a connection.
PROBE_TIMEOUT_SECONDS = 2


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
        db = connections[alias].settings_dict
    return unpooled(db, timeout)


def unpooled(settings_dict: dict[str, Any], timeout: float | None = None, statements: bool = True) -> dict[str, Any]:
    """A copy of ``settings_dict`` with no pool, no persistence and no health checks; with
    ``timeout``, connecting (and, with ``statements``, each statement) is bounded by it."""
    db = copy.deepcopy(settings_dict)
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
        if statements:
            statement = f"-c statement_timeout={int(timeout * 1000)}"
            options["options"] = f"{options['options']} {statement}" if options.get("options") else statement
    elif "mysql" in engine:
        options["connect_timeout"] = whole
        if statements:
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


def probe(
    wrapper: BaseDatabaseWrapper, backend: type[BaseDatabaseWrapper], timeout: float = PROBE_TIMEOUT_SECONDS
) -> None:
    """The circuit breaker's probe (:mod:`core.db_backends.breaker`): open one driver connection
    with ``wrapper``'s settings, unpooled, connecting within ``timeout``, and close it; raises the
    driver's error. ``backend``: Django's own wrapper class that ours extends, so the probe does not
    go through the breaker that asked for it (nor through Django's connection set-up: no session
    settings, no ``connection_created``)."""
    db = unpooled(wrapper.settings_dict, timeout, statements=False)
    bare = backend(db, wrapper.alias)
    bare.get_new_connection(bare.get_connection_params()).close()
