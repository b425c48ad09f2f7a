"""Fixtures for the cross-database services: per-alias query counts across worker threads."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest
from django.core.cache import cache

from routers import state


@pytest.fixture
def count_queries() -> Callable[[], contextlib.AbstractContextManager[dict[str, int]]]:
    """``with count_queries() as n: service()`` then ``n == {"users_db": 1, ...}``.

    Counts come from the routing state's timings (core/instrumentation.py), which the fan-out's
    worker threads share: every query of the block on any thread of its context, per alias.
    """

    @contextlib.contextmanager
    def capture() -> Iterator[dict[str, int]]:
        counts: dict[str, int] = {}
        with state.isolated() as current:
            yield counts
            counts.update({alias: int(entry[0]) for alias, entry in current.timings.items()})

    return capture


@pytest.fixture
def clear_cache(django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The cache table is not flushed between tests; start and end each test with it empty."""
    with django_db_blocker.unblock():
        cache.clear()
    yield
    with django_db_blocker.unblock():
        cache.clear()
