"""The query string of every ``/api/v1/`` operation (``api.query_params``): numbers are ASCII
digits, each parameter comes at most once, and only the parameters the operation declares are
accepted. The operations are walked from the committed OpenAPI schema, so a new endpoint is
covered as soon as it is in the schema (tests/api/test_schema.py keeps the schema the code's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core import aliases
from tests.api.conftest import assert_problem
from tests.factories import api_client, make_post, make_user

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "openapi" / "schema.yaml").read_text(encoding="utf-8"))
METHODS = ("get", "post", "put", "patch", "delete")
#: (method, path, the query parameters the schema declares for it)
OPERATIONS = [
    (method, path, tuple(p["name"] for p in op.get("parameters", []) if p["in"] == "query"))
    for path, item in SCHEMA["paths"].items()
    if path.startswith("/api/v1/")
    for method, op in item.items()
    if method in METHODS
]
DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE, aliases.LEGACY]
pytestmark = pytest.mark.django_db(databases=DBS)

#: Not ASCII digits: each is a 400 in a query and a 404 in a path.
NOT_DIGITS = ["\uff12", "\u0663", "\u00b2", "+2", "-2", " 2", "2 ", "1_0", "2.0", "0x2", "2e0", ""]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _call(client, method: str, url: str):  # type: ignore[no-untyped-def]
    return getattr(client, method)(url, format="json") if method != "get" else client.get(url)


def test_the_walk_covers_every_operation() -> None:
    assert len(OPERATIONS) >= 27
    assert (
        "get",
        "/api/v1/posts/",
        ("author_id", "created_after", "created_before", "ordering", "page", "page_size", "search"),
    ) in [(m, p, tuple(sorted(q))) for m, p, q in OPERATIONS]


@pytest.mark.parametrize(("method", "path", "declared"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_declared_parameter_given_twice_is_a_400_naming_it(method: str, path: str, declared: tuple) -> None:
    client = api_client(staff=True)
    for name in declared or ("page",):
        response = _call(client, method, f"{_url(path)}?{name}=1&{name}=2")
        body = assert_problem(response, 400, name)
        assert [e["code"] for e in body["errors"]] == ["duplicate_parameter"], body


@pytest.mark.parametrize(("method", "path", "declared"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_undeclared_parameter_is_a_400_naming_it(method: str, path: str, declared: tuple) -> None:
    response = _call(api_client(staff=True), method, f"{_url(path)}?zz_unknown=1")
    body = assert_problem(response, 400, "zz_unknown")
    assert body["errors"][0]["code"] == "unknown_parameter"
    assert body["errors"][0]["message"].endswith(f"accepts: {', '.join(sorted(declared)) or 'none'}.")


def test_a_repeated_parameter_is_named_even_with_equal_values_and_a_single_one_still_works() -> None:
    client = api_client(staff=True)
    author = make_user(username="ann", email="ann@example.com")
    make_post(author=author)
    for query in ("page=1&page=1", "author_id=1&author_id=1", "search=a&search=b", "ordering=id&ordering=-id"):
        name = query.split("=")[0]
        assert_problem(client.get(f"/api/v1/posts/?{query}"), 400, name)
    assert client.get(f"/api/v1/posts/?author_id={author.pk}&page=1&page_size=5").json()["count"] == 1


QUERY_NUMBERS = [
    ("/api/v1/posts/", "author_id"),
    ("/api/v1/posts/", "page"),
    ("/api/v1/posts/", "page_size"),
    ("/api/v1/users/", "page"),
    ("/api/v1/users/", "page_size"),
    ("/api/v1/analytics/events/", "user_id"),
    ("/api/v1/analytics/events/", "page_size"),
    ("/api/v1/analytics/events/summary/", "user_id"),
    ("/api/v1/users/activity/", "days"),
    ("/api/v1/users/activity/", "page"),
    ("/api/v1/users/activity/", "page_size"),
    ("/api/v1/legacy/customers/", "page"),
    ("/api/v1/legacy/customers/", "page_size"),
    ("/api/v1/admin/databases/slow-queries/", "limit"),
]


@pytest.mark.parametrize(("path", "name"), QUERY_NUMBERS)
def test_query_numbers_are_ascii_digits_only(path: str, name: str) -> None:
    """Every integer parameter the schema declares is in the list above, and refuses what int() takes."""
    client = api_client(staff=True)
    for raw in NOT_DIGITS:
        if raw == "" and name in ("author_id", "user_id"):
            continue  # an empty filter value is the `blank` 400 (tests/api/test_users.py)
        response = client.get(path, {name: raw})
        body = assert_problem(response, 400, name)
        assert body["errors"][0]["code"] in ("invalid", "blank"), (raw, body)
    assert client.get(path, {name: "2"}).status_code in (200, 404)  # 404: page 2 of an empty list


def test_the_list_of_integer_parameters_is_complete() -> None:
    declared = {
        (path, p["name"])
        for path, item in SCHEMA["paths"].items()
        for op in item.values()
        if isinstance(op, dict)
        for p in op.get("parameters", [])
        if p["in"] == "query" and p["schema"].get("type") == "integer"
    }
    assert declared == set(QUERY_NUMBERS)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/posts/{}/",
        "/api/v1/users/{}/",
        "/api/v1/analytics/events/{}/",
        "/api/v1/legacy/customers/{}/",
        "/api/v1/users/{}/dashboard/",
        "/api/v1/users/{}/stats/",
    ],
)
def test_path_ids_that_are_not_ascii_digits_are_404(path: str) -> None:
    client = api_client(staff=True)
    for raw in [*(r for r in NOT_DIGITS if r and r.strip() == r), "%202", "99999999999999999999", "0"]:
        response = client.get(path.format(raw))
        assert response.status_code == 404, (path, raw, response.status_code)
        assert response["Content-Type"].startswith("application/problem+json")


PATHS = sorted({path for _, path, _ in OPERATIONS})


@pytest.mark.parametrize("path", PATHS)
def test_a_method_an_operation_does_not_take_is_a_405_whatever_its_query(path: str) -> None:
    """The method is answered before the query string: 405 with ``Allow`` (or the permission
    table's 403 for an operation no token may do), never a 400 about a parameter of an operation
    that does not exist."""
    taken = {method.upper() for method, p, _ in OPERATIONS if p == path}
    client = api_client(staff=True)
    for method in ("put", "patch", "delete", "post"):
        if method.upper() in taken:
            continue
        response = getattr(client, method)(f"{_url(path)}?zz_unknown=1&page=1&page=2", format="json")
        assert response.status_code in (403, 405), (method, path, response.content[:200])
        if response.status_code == 405:
            assert method.upper() not in response["Allow"]
        else:
            assert response.json()["detail"] == "No token may do this operation."
