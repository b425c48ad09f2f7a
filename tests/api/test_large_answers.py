"""Large answers are collected: a full garbage collection once their sum passes
``LARGE_ANSWER_GC_BYTES`` (api.middleware.LargeAnswers), so what their reference cycles hold does not
pile up in a worker."""

from __future__ import annotations

import gc

import pytest
from django.test import override_settings

from api.middleware import LARGE_ANSWER_BYTES, large_answers
from core import aliases
from tests.factories import api_client, make_post, make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.CACHE])


def _large_page() -> None:
    author = make_user()
    for i in range(20):
        make_post(author=author, title=f"long {i}", content="x" * 65_536)


@pytest.fixture(autouse=True)
def _no_pending_bytes() -> None:
    """Large answers of earlier tests in this process count towards the same budget: start empty."""
    with large_answers.lock:
        large_answers.pending = 0


def _collections_during(budget: int, requests: int) -> tuple[int, list[int]]:
    client = api_client()
    sizes = []
    started = large_answers.collections
    with override_settings(LARGE_ANSWER_GC_BYTES=budget):
        for _ in range(requests):
            response = client.get("/api/v1/posts/?page_size=20")
            assert response.status_code == 200
            sizes.append(int(response["Content-Length"]))
    return large_answers.collections - started, sizes


def test_a_collection_once_large_answers_pass_the_budget() -> None:
    _large_page()
    seen: list[str] = []

    def callback(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append(phase)

    gc.callbacks.append(callback)
    try:
        collections, sizes = _collections_during(3 * LARGE_ANSWER_BYTES, 5)
    finally:
        gc.callbacks.remove(callback)
    assert all(size >= LARGE_ANSWER_BYTES for size in sizes), sizes
    # 5 answers of 1.3 MB each with a budget of 3 MiB: a collection after the third (4 MB), none
    # after the fifth (2.7 MB pending).
    assert collections == 1
    assert seen  # a full (generation 2) collection ran


def test_no_collection_when_turned_off_or_for_small_answers() -> None:
    _large_page()
    assert _collections_during(0, 4)[0] == 0
    client = api_client()
    started = large_answers.collections
    with override_settings(LARGE_ANSWER_GC_BYTES=1):
        for _ in range(5):
            assert client.get("/api/v1/posts/?page_size=1").status_code == 200
    assert large_answers.collections == started
