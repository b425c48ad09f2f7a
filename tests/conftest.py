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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from django.conf import settings  # noqa: F401  (settings are configured by now)

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

    with django_db_blocker.unblock():
        ensure_customers_table(aliases.LEGACY)
    yield


@pytest.fixture(autouse=True)
def _fresh_routing_state() -> Iterator[None]:
    """Each test starts with no routing state and no remembered replica failures."""
    state.reset()
    health.clear()
    yield
    state.reset()
    health.clear()


@pytest.fixture
def queries() -> Callable[..., CaptureQueriesContext]:
    """``with queries("users_db") as q: ...; len(q)`` counts the queries one alias ran."""

    @contextmanager
    def capture(alias: str) -> Iterator[CaptureQueriesContext]:
        with CaptureQueriesContext(connections[alias]) as ctx:
            yield ctx

    return capture  # type: ignore[return-value]
