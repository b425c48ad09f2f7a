"""Personal data (email, first_name, last_name) is null in every answer that carries users, unless
the token has pii:read or is bound to that user; email filter, search and ordering need pii:read;
a taken email at registration is a 409 (only callers with pii:read may register)."""

from __future__ import annotations

import pytest

from core import aliases
from tests.api.conftest import assert_problem
from tests.factories import api_client, make_post, make_user

ALL_USER_DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]
PII = ("email", "first_name", "last_name")


def user_records(path: str, body: dict) -> list[dict]:
    """Every user object of an answer that carries users (by path)."""
    if path.startswith("/api/v1/users/?") or path == "/api/v1/users/activity/":
        return body["results"]
    if path.endswith(("/dashboard/", "/stats/")):
        return [body["user"]]
    if path == "/api/v1/reports/new-user-activity/":
        return body["users"]
    return [body]  # a user's detail


def answers(user_id: int) -> list[str]:
    return [
        "/api/v1/users/?page_size=200",
        f"/api/v1/users/{user_id}/",
        f"/api/v1/users/{user_id}/dashboard/",
        f"/api/v1/users/{user_id}/stats/",
        "/api/v1/users/activity/",
        "/api/v1/reports/new-user-activity/",
    ]


@pytest.mark.django_db(transaction=True, databases=ALL_USER_DBS)
def test_personal_data_is_null_without_pii_read_everywhere_and_shown_to_who_may() -> None:
    me, someone = make_user(), make_user()
    make_post(author=me)
    readers = {
        "read": (api_client(scopes=["read"]), set()),
        "bound": (api_client(scopes=["read"], user_id=me.pk), {me.pk}),
        "pii": (api_client(scopes=["read", "pii:read"]), {me.pk, someone.pk}),
        "staff": (api_client(staff=True), {me.pk, someone.pk}),
    }
    for name, (client, visible) in readers.items():
        for target in (me, someone):
            for path in answers(target.pk):
                response = client.get(path)
                assert response.status_code == 200, (name, path, response.content[:200])
                records = [r for r in user_records(path, response.json()) if r["id"] in (me.pk, someone.pk)]
                assert records, (name, path)
                for record in records:
                    shown = record["id"] in visible
                    for field in PII:
                        if field in record:
                            assert (record[field] is not None) == shown, (name, path, field, record)


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
@pytest.mark.parametrize("query", ["email=a@example.com", "search=ada", "ordering=email", "ordering=-email"])
def test_email_filter_search_and_ordering_need_pii_read(query: str) -> None:
    make_user(email="a@example.com")
    body = assert_problem(api_client(scopes=["read"]).get(f"/api/v1/users/?{query}"), 403)
    assert body["required_scope"] == "pii:read"
    assert api_client(scopes=["read", "pii:read"]).get(f"/api/v1/users/?{query}").status_code == 200


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS])
def test_registration_needs_pii_read_and_a_taken_email_is_a_409() -> None:
    make_user(username="first", email="taken@example.com")
    body = {"username": "second", "email": "TAKEN@example.com"}
    refused = assert_problem(
        api_client(scopes=["registrations:write"]).post("/api/v1/registrations/", body, format="json"), 403
    )
    assert refused["required_scope"] == "pii:read"  # before the body is looked at: no answer depends on the email
    conflict = assert_problem(
        api_client(scopes=["registrations:write", "pii:read"]).post("/api/v1/registrations/", body, format="json"),
        409,
        "email",
    )
    assert conflict["errors"][0]["code"] == "unique"
