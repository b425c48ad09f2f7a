"""Tests marked ``tablespaces`` need PostgreSQL tablespaces configured for the analytics alias
(``scripts/tablespace create ...`` and ``eval "$(scripts/tablespace env)"``). Without them they are
deselected, not skipped; asking for them explicitly (``-m tablespaces``) without them is an error.

Tests marked ``stack`` (``scripts/stack``, the whole topology, minutes) run only when asked for with
``-m stack`` (``.ci/run`` runs them as a step of their own); otherwise they are deselected."""

from __future__ import annotations

import pytest
from django.conf import settings

from core import aliases


def tablespaces_configured() -> bool:
    return (
        aliases.ANALYTICS in settings.DATABASE_TABLESPACES and aliases.ANALYTICS in settings.DATABASE_INDEX_TABLESPACES
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expression = (config.option.markexpr or "").strip()
    if "stack" not in expression or "not stack" in expression:
        stack = [item for item in items if item.get_closest_marker("stack")]
        if stack:
            config.hook.pytest_deselected(items=stack)
            items[:] = [item for item in items if not item.get_closest_marker("stack")]
    if tablespaces_configured():
        return
    if "tablespaces" in expression and "not tablespaces" not in expression:
        raise pytest.UsageError(
            "-m tablespaces needs ANALYTICS_DATABASE_DEFAULT_TABLESPACE and "
            "ANALYTICS_DATABASE_DEFAULT_INDEX_TABLESPACE on PostgreSQL (scripts/tablespace env)"
        )
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("tablespaces") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
