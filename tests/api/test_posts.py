"""``/api/v1/posts/``: posts on default, ``author_id`` checked on users_db, authors embedded."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core import aliases
from core.blog.models import Post
from tests.api.conftest import assert_problem, timeout_statements
from tests.factories import make_post, make_user

URL = "/api/v1/posts/"
pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])


def test_needs_a_token() -> None:
    assert_problem(APIClient().get(URL), 401)
    assert_problem(APIClient().post(URL, {}, format="json"), 401)


def test_list_embeds_authors_newest_first(client_) -> None:
    alice, bob = make_user(username="alice"), make_user(username="bob")
    first = make_post(author=alice)
    second = make_post(author=bob)
    orphan = make_post(author_id=alice.pk + bob.pk + 1000)
    body = client_.get(URL).json()
    assert body["count"] == 3
    results = body["results"]
    assert [p["id"] for p in results] == [orphan.pk, second.pk, first.pk]
    assert results[1]["author"] == {"id": bob.pk, "username": "bob"}
    assert results[2]["author"] == {"id": alice.pk, "username": "alice"}
    assert results[0]["author"] is None


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.CACHE], transaction=True)
def test_list_costs_one_users_db_query_whatever_the_page_size(client_) -> None:
    authors = [make_user() for _ in range(6)]
    for i in range(30):
        make_post(author=authors[i % 6])
    counts = []
    for size in (5, 20):
        with (
            CaptureQueriesContext(connections[aliases.DEFAULT]) as default,
            CaptureQueriesContext(connections[aliases.USERS]) as users,
        ):
            response = client_.get(URL, {"page_size": size})
        assert response.status_code == 200 and len(response.json()["results"]) == size
        counts.append((len(default), len(users)))
    # default: the token (looked up and its first use stamped once, then remembered), the
    # statement timeout, COUNT(*), page; users_db: one query for the page's authors.
    timeout = timeout_statements(aliases.DEFAULT)
    assert counts == [(4 + timeout, 1), (2 + timeout, 1)]


def test_filters_and_ordering(client_) -> None:
    alice, bob = make_user(), make_user()
    a1 = make_post(author=alice, title="zebra")  # searched by word below (test_search.py: how)
    b1 = make_post(author=bob, title="apple")
    a2 = make_post(author=alice, title="mango")

    def ids(**params: object) -> list[int]:
        response = client_.get(URL, params)
        assert response.status_code == 200, response.content
        return [p["id"] for p in response.json()["results"]]

    assert ids(author_id=alice.pk) == [a2.pk, a1.pk]
    assert ids(ordering="title") == [b1.pk, a2.pk, a1.pk]
    assert ids(search="zebra") == [a1.pk]
    assert ids(created_after="2000-01-01T00:00:00Z", author_id=bob.pk) == [b1.pk]
    assert ids(created_before="2000-01-01T00:00:00Z") == []


@pytest.mark.parametrize("value", ["abc", "0", str(2**63), "1e5", "-3"])
def test_author_id_filter_out_of_range_or_malformed_is_400(client_, value: str) -> None:
    assert_problem(client_.get(URL, {"author_id": value}), 400, "author_id")


def test_create_checks_author_on_users_db(client_) -> None:
    author = make_user()
    response = client_.post(URL, {"title": "Hi", "content": "there", "author_id": author.pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["author"] == {"id": author.pk, "username": author.username}
    assert Post.objects.get(pk=body["id"]).author_id == author.pk

    missing = client_.post(URL, {"title": "Hi", "author_id": author.pk + 1000}, format="json")
    problem = assert_problem(missing, 400, "author_id")
    assert problem["errors"][0]["code"] == "does_not_exist"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"title": "x"}, "author_id"),
        ({"title": "x", "author_id": 2**63}, "author_id"),
        ({"title": "x", "author_id": 10**40}, "author_id"),
        ({"title": "x", "author_id": "abc"}, "author_id"),
        ({"title": "x", "author_id": 1.5}, "author_id"),
        ({"title": "x", "author_id": True}, "author_id"),
        ({"title": "", "author_id": 1}, "title"),
        ({"title": "a" * 201, "author_id": 1}, "title"),
        ({"title": "nul\x00", "author_id": 1}, "title"),
        ({"title": "x", "content": "nul\x00", "author_id": 1}, "content"),
    ],
)
def test_create_validation(client_, body, field) -> None:
    assert_problem(client_.post(URL, body, format="json"), 400, field)


def test_huge_float_author_id_is_400(client_) -> None:
    response = client_.generic("POST", URL, b'{"title": "x", "author_id": 1e400}', content_type="application/json")
    assert_problem(response, 400)


def test_update_partial_update_and_delete(client_) -> None:
    alice, bob = make_user(), make_user()
    post = make_post(author=alice, title="old")
    response = client_.patch(f"{URL}{post.pk}/", {"title": "new"}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "new"
    assert_problem(client_.patch(f"{URL}{post.pk}/", {"author_id": bob.pk + 999}, format="json"), 400, "author_id")
    response = client_.put(f"{URL}{post.pk}/", {"title": "put", "author_id": bob.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["author"]["id"] == bob.pk and response.json()["content"] == ""
    assert client_.delete(f"{URL}{post.pk}/").status_code == 204
    assert_problem(client_.get(f"{URL}{post.pk}/"), 404)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"title": 0, "author_id": 1}, "title"),
        ({"title": "x", "content": 0, "author_id": 1}, "content"),
        ({"title": "x", "author_id": "1"}, "author_id"),
        ({"title": ["x"], "author_id": 1}, "title"),
    ],
)
def test_wrong_json_types_are_400_not_coerced(client_, body, field) -> None:
    assert_problem(client_.post(URL, body, format="json"), 400, field)


@pytest.mark.parametrize("params", [{"created_before": ""}, {"author_id": ""}, {"page_size": ""}, {"page": ""}])
def test_empty_typed_parameters_are_400(client_, params) -> None:
    assert_problem(client_.get(URL, params), 400, *params)


def test_retrieve_costs_one_query_per_alias(client_) -> None:
    post = make_post()
    with (
        CaptureQueriesContext(connections[aliases.DEFAULT]) as default,
        CaptureQueriesContext(connections[aliases.USERS]) as users,
    ):
        body = client_.get(f"{URL}{post.pk}/").json()
    assert body["author"]["id"] == post.author_id
    assert (len(default), len(users)) == (3, 1)  # token + its last use stamped + post; the author
