"""Big list counts are reused briefly; the one users-by-id selector agrees with the ORM."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from api import pagination
from core import aliases
from tests.factories import api_client, make_post, make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])


@pytest.fixture(autouse=True)
def _no_remembered_counts():
    pagination._counts.clear()
    yield
    pagination._counts.clear()


@override_settings(LIST_COUNT_CACHE_SECONDS=60, LIST_COUNT_CACHE_MIN_ROWS=3)
def test_large_counts_are_reused_small_ones_are_exact():
    client = api_client()
    author = make_user()
    for _ in range(2):
        make_post(author=author)
    assert client.get("/api/v1/posts/").json()["count"] == 2  # below the threshold: not kept
    make_post(author=author)
    with CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
        assert client.get("/api/v1/posts/").json()["count"] == 3  # counted, and now kept
    assert any("COUNT(" in q["sql"] for q in queries.captured_queries)
    make_post(author=author)
    with CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
        body = client.get("/api/v1/posts/").json()
    assert body["count"] == 3  # reused within the window, without a COUNT query
    assert len(body["results"]) == 3  # and the page agrees with it (Django slices by the count)
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)
    # another page size or order of the same rows: the same count, still reused
    with CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
        assert client.get("/api/v1/posts/?ordering=title&page_size=2").json()["count"] == 3
    assert not any("COUNT(" in q["sql"] for q in queries.captured_queries)
    # a search is other rows: counted afresh
    assert client.get("/api/v1/posts/?search=nothing-like-this").json()["count"] == 0
    # a different filter is a different count
    assert client.get(f"/api/v1/posts/?author_id={author.pk + 1}").json()["count"] == 0


@override_settings(LIST_COUNT_CACHE_SECONDS=0)
def test_count_cache_can_be_turned_off():
    client = api_client()
    author = make_user()
    make_post(author=author)
    assert client.get("/api/v1/posts/").json()["count"] == 1
    make_post(author=author)
    assert client.get("/api/v1/posts/").json()["count"] == 2


@pytest.mark.parametrize("many", [False, True], ids=["one-statement", "orm-beyond-the-limit"])
def test_usernames_by_id_agrees_with_the_orm(many, monkeypatch):
    from core.users import selectors as user_selectors
    from core.users.models import User

    if many:
        monkeypatch.setattr(user_selectors, "_RAW_IN_MAX", 1)
    users = [make_user(username=f"name-{i}-ü") for i in range(3)]
    wanted = {u.pk for u in users} | {987654321, None}
    with CaptureQueriesContext(connections[aliases.USERS]) as queries:
        got = user_selectors.usernames_by_id(user_ids=wanted)
    assert got == dict(User.objects.filter(pk__in=[u.pk for u in users]).values_list("id", "username"))
    assert len(queries) == 1
    assert user_selectors.usernames_by_id(user_ids=[]) == {}
