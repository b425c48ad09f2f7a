"""Suite-wide fixtures.

The suite runs against whatever the environment points the aliases at: the embedded SQLite files
by default, real PostgreSQL/MariaDB under ``scripts/test``. Tests that only make sense on a real
engine carry ``@pytest.mark.real_engines`` and are skipped on SQLite; with
``SWITCHYARD_REQUIRE_REAL_ENGINES=1`` (``scripts/test``, CI) any skipped test fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from core import aliases
from routers import health, state


def vendor(alias: str) -> str:
    return connections[alias].vendor


def on_real_engines() -> bool:
    return (
        vendor(aliases.DEFAULT) == "postgresql"
        and vendor(aliases.USERS) == "postgresql"
        and vendor(aliases.ANALYTICS) == "postgresql"
        and vendor(aliases.LEGACY) == "mysql"
    )


def standin_replicas() -> tuple[str, ...]:
    """Replica aliases of users_db that are separate databases (not mirrors of the primary)."""
    from django.conf import settings

    from core.db_config import replicas_of

    return tuple(
        alias
        for alias in replicas_of(settings.DATABASES).get(aliases.USERS, ())
        if not settings.DATABASES[alias].get("TEST", {}).get("MIRROR")
    )


def mirrored_replicas() -> tuple[str, ...]:
    """Replica aliases whose test database is their primary's (a real streaming replica)."""
    from django.conf import settings

    return tuple(alias for alias, config in settings.DATABASES.items() if config.get("TEST", {}).get("MIRROR"))


def _monthly_aliases() -> list[str]:
    from routers.timeseries import monthly_aliases

    return monthly_aliases()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that need replica aliases run only in the passes that configure them (scripts/test);
    tests that need the real engines are skipped on SQLite (and CI fails on any skip there)."""
    keep, dropped = [], []
    for item in items:
        if (
            "standin_replica" in item.keywords
            and not standin_replicas()
            or "replica" in item.keywords
            and not mirrored_replicas()
            or "timeseries_archive" in item.keywords
            and not _monthly_aliases()
        ):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    if on_real_engines():
        return
    skip = pytest.mark.skip(reason="needs the real engines (run scripts/test)")
    for item in items:
        if "real_engines" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("SWITCHYARD_REQUIRE_REAL_ENGINES") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        if reporter:
            reporter.write_line(
                f"FAILED: {skipped} test(s) skipped on the real engines; every test must run there",
                red=True,
            )
        session.exitstatus = 1


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """After Django builds the test databases, create the legacy table we do not migrate."""
    from core.legacy.schema import ensure_customers_table
    from core.users.models import User

    with django_db_blocker.unblock():
        ensure_customers_table(aliases.LEGACY)
        # A stand-in replica is a separate, never-migrated database: give it the users table so
        # that reads routed to it find a table (its rows are put there by the tests themselves).
        for alias in standin_replicas():
            connection = connections[alias]
            with connection.cursor() as cursor:
                present = User._meta.db_table in connection.introspection.table_names(cursor)
            if not present:
                with connection.schema_editor() as editor:
                    editor.create_model(User)
    yield
    # No fan-out worker thread may still hold a session when the test databases are dropped.
    from core.services.fanout import close_worker_connections

    close_worker_connections()


@pytest.fixture(autouse=True)
def _fresh_routing_state() -> Iterator[None]:
    """Each test starts with no routing state and no remembered database failures."""
    from api import authentication
    from core.db_backends import breaker

    state.reset()
    health.clear()
    breaker.reset_all()
    authentication.forget_all()
    yield
    state.reset()
    health.clear()
    breaker.reset_all()


@pytest.fixture
def queries() -> Callable[..., CaptureQueriesContext]:
    """``with queries("users_db") as q: ...; len(q)`` counts the queries one alias ran."""

    @contextmanager
    def capture(alias: str) -> Iterator[CaptureQueriesContext]:
        with CaptureQueriesContext(connections[alias]) as ctx:
            yield ctx

    return capture  # type: ignore[return-value]
