"""Issue 15, items 3 and 4: Location on every 201, the headers browser code may read and send
(CORS), the replica pin for a cross-origin frontend, and OPTIONS describing writes by their input."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from tests.factories import api_client, make_customer, make_user

pytestmark = pytest.mark.django_db(databases="__all__")
ORIGIN = "https://app.example.com"


def test_every_201_names_what_it_created(staff_client) -> None:
    user = staff_client.post("/api/v1/users/", {"username": "loc", "email": "loc@example.com"}, format="json")
    assert user.status_code == 201
    assert user["Location"] == f"/api/v1/users/{user.json()['id']}/"
    assert staff_client.get(user["Location"]).json()["username"] == "loc"

    post = staff_client.post(
        "/api/v1/posts/",
        {"title": "Where", "author_id": user.json()["id"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="loc-1",
    )
    assert post.status_code == 201
    assert post["Location"] == f"/api/v1/posts/{post.json()['id']}/"
    assert staff_client.get(post["Location"]).json()["title"] == "Where"
    # A replayed answer names the same resource.
    again = staff_client.post(
        "/api/v1/posts/",
        {"title": "Where", "author_id": user.json()["id"]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="loc-1",
    )
    assert again["Idempotent-Replayed"] == "true" and again["Location"] == post["Location"]

    event = staff_client.post("/api/v1/analytics/events/", {"event_type": "page_view"}, format="json")
    assert event.status_code == 201
    assert event["Location"] == f"/api/v1/analytics/events/{event.json()['id']}/"
    assert staff_client.get(event["Location"]).json()["id"] == event.json()["id"]

    batch = staff_client.post("/api/v1/analytics/events/batch/", {"events": [{"event_type": "click"}]}, format="json")
    assert batch.status_code == 201 and batch["Location"] == "/api/v1/analytics/events/"

    registration = staff_client.post(
        "/api/v1/registrations/", {"username": "reg", "email": "reg@example.com"}, format="json"
    )
    assert registration.status_code == 201
    assert registration["Location"] == f"/api/v1/users/{registration.json()['user']['id']}/"


@override_settings(LEGACY_ALLOW_WRITES=True)
def test_a_created_legacy_customer_has_a_location(staff_client) -> None:
    make_customer()
    response = staff_client.post(
        "/api/v1/legacy/customers/", {"customer_name": "Loc", "customer_email": "loc@example.com"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response["Location"] == f"/api/v1/legacy/customers/{response.json()['customer_id']}/"


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_cors_exposes_what_browser_code_needs(staff_client) -> None:
    author = make_user()
    response = staff_client.post(
        "/api/v1/posts/", {"title": "x", "author_id": author.pk}, format="json", HTTP_ORIGIN=ORIGIN
    )
    assert response.status_code == 201
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {
        "location",
        "retry-after",
        "idempotent-replayed",
        "etag",
        "x-request-id",
        "server-timing",
        settings.REPLICA_PIN_HEADER.lower(),
    } <= exposed


@override_settings(CORS_ALLOWED_ORIGINS=[ORIGIN])
def test_cors_preflight_allows_pin_idempotency_key_and_if_match() -> None:
    pin = settings.REPLICA_PIN_HEADER.lower()
    response = APIClient().options(
        "/api/v1/posts/1/",
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="PATCH",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=f"authorization, content-type, idempotency-key, if-match, {pin}",
    )
    assert response.status_code == 200
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match", pin} <= allowed


def _options(client: APIClient, path: str) -> dict:
    response = client.options(path)
    assert response.status_code == 200, response.content
    return response.json()


@override_settings(LEGACY_ALLOW_WRITES=True)
def test_options_describes_writes_with_their_input(staff_client) -> None:
    users = _options(staff_client, "/api/v1/users/")["actions"]["POST"]
    assert set(users) == {"username", "email", "first_name", "last_name"}
    assert users["username"]["required"] and not users["username"]["read_only"]
    assert users["email"]["required"] and not users["first_name"]["required"]
    assert "id" not in users  # the output's fields are not the input's

    posts = _options(staff_client, "/api/v1/posts/")["actions"]["POST"]
    assert posts["title"]["required"] and posts["author_id"]["required"] and not posts["content"]["required"]
    assert posts["title"]["max_length"] == 200

    user = make_user()
    put = _options(staff_client, f"/api/v1/users/{user.pk}/")["actions"]
    assert set(put) == {"PUT"} and put["PUT"]["username"]["required"]

    batch = _options(staff_client, "/api/v1/analytics/events/batch/")["actions"]["POST"]
    assert batch["events"]["required"] and batch["events"]["type"] in ("list", "field")
    event = _options(staff_client, "/api/v1/analytics/events/")["actions"]["POST"]
    assert event["event_type"]["required"]

    registration = _options(staff_client, "/api/v1/registrations/")["actions"]["POST"]
    assert registration["username"]["required"] and registration["profile"]["type"] == "nested object"

    legacy = _options(staff_client, "/api/v1/legacy/customers/")["actions"]["POST"]
    assert legacy["customer_email"]["required"]


def test_options_leaves_out_writes_the_token_may_not_make() -> None:
    reader = api_client(scopes=("read",))
    body = _options(reader, "/api/v1/users/")
    assert "actions" not in body or "POST" not in body["actions"]
