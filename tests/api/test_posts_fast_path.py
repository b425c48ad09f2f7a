"""The posts list's hot path gives exactly what the serializer gives; big counts are reused briefly."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from api import pagination
from api.serializers.posts import PostOutputSerializer, post_rows_output
from core import aliases
from core.blog import selectors
from core.blog.models import Post
from tests.factories import api_client, make_post, make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])


@pytest.fixture(autouse=True)
def _no_remembered_counts():
    pagination._counts.clear()
    yield
    pagination._counts.clear()


def test_fast_rows_equal_the_serializer_output():
    author = make_user(username="zoë_🚀")
    make_post(author=author, title="Ünïcode ✓", content="x" * 300)
    make_post(author_id=987654321, title="orphan")  # author gone: author is null
    queryset = Post.objects.all()
    fast = post_rows_output(selectors.post_rows_attach_authors(list(selectors.post_rows(queryset))))
    slow = PostOutputSerializer(selectors.posts_attach_authors(list(queryset)), many=True).data
    assert fast == [dict(item) for item in slow]
    assert fast[0]["author"] is None or fast[1]["author"] is None


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


@pytest.fixture
def no_compiled_pages():
    pagination._compiled.clear()
    yield
    pagination._compiled.clear()


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?page_size=2",
        "?page_size=2&page=2",
        "?page=last&page_size=2",
        "?ordering=title",
        "?ordering=-id,title",
        "?search=b",
        "?author_id={a}",
        "?author_id={a}&ordering=created_at&page_size=1&page=2",
        "?created_after=2000-01-01T00:00:00Z",
        "?search=zzz-nothing",
    ],
)
def test_compiled_pages_answer_what_the_orm_answers(query, no_compiled_pages, monkeypatch):
    """Each list shape, its SQL compiled once and reused with another LIMIT/OFFSET, gives the same
    pages as slicing the queryset, asked twice (compiled, then from the kept SQL)."""
    from api.views.posts import PostViewSet

    first, second = make_user(username="first"), make_user(username="second")
    for n, (author, title) in enumerate([(first, "alpha"), (second, "beta"), (first, "bravo"), (second, "gamma")]):
        make_post(author=author, title=title, content=f"post {n}")
    client = api_client()
    url = "/api/v1/posts/" + query.format(a=first.pk)
    fast = [client.get(url).json() for _ in range(2)]
    monkeypatch.setattr(PostViewSet, "compiled_pages", False)
    slow = client.get(url).json()
    assert fast[0] == fast[1] == slow
    if connections[aliases.DEFAULT].vendor == "postgresql":
        assert len(pagination._compiled) == 1 and None not in pagination._compiled.values()


def test_a_compiled_page_is_one_statement_and_a_past_the_end_page_is_still_a_404(no_compiled_pages):
    author = make_user()
    for n in range(3):
        make_post(author=author, title=f"t{n}")
    client = api_client()
    client.get("/api/v1/posts/?page_size=2")  # compiles the shape
    with CaptureQueriesContext(connections[aliases.DEFAULT]) as queries:
        body = client.get("/api/v1/posts/?page_size=2&page=2").json()
    assert [p["title"] for p in body["results"]] == ["t0"]
    page_statements = [q["sql"] for q in queries.captured_queries if "COUNT(" not in q["sql"]]
    assert len(page_statements) == 1 and page_statements[0].rstrip().endswith("LIMIT 1 OFFSET 2")
    assert client.get("/api/v1/posts/?page_size=2&page=3").status_code == 404
