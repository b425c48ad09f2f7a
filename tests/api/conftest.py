"""Helpers for the API tests."""

from __future__ import annotations

from typing import Any

import pytest

PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, *fields: str) -> dict:
    """The response is Problem Details with ``status``, naming each of ``fields`` in ``errors[]``."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    assert response["Content-Type"].startswith(PROBLEM), response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:switchyard:problem:")
    assert body["title"] and body["detail"]
    assert isinstance(body["errors"], list)
    named = {e["field"] for e in body["errors"]}
    for field in fields:
        assert field in named, (field, body["errors"])
    return body


def timeout_statements(alias: str) -> int:
    """Statements a list adds on ``alias`` for its statement timeout (core.statement_timeout):
    on PostgreSQL its transaction's ``BEGIN`` and ``COMMIT`` (Django records both) and ``SET
    LOCAL``; none on MariaDB (a prefix of each statement) or SQLite (no limit). Counted outside a
    test's transaction (``transaction=True``), as served: inside one, the list's transaction is a
    savepoint that also reads and puts back the previous value."""
    from django.conf import settings
    from django.db import connections

    return 3 if connections[alias].vendor == "postgresql" and settings.LIST_STATEMENT_TIMEOUT_MS > 0 else 0


@pytest.fixture
def staff_client():  # type: ignore[no-untyped-def]
    from tests.factories import api_client

    return api_client(staff=True)


@pytest.fixture
def client_():  # type: ignore[no-untyped-def]
    from tests.factories import api_client

    return api_client(staff=False)
