"""Request bodies are held to their declared shape: every unknown field is a 400 naming it."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from api.serializers.input import MAX_NAMED
from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.legacy.models import LegacyCustomer
from core.models import IdempotencyRecord
from core.users.models import User
from tests.api.conftest import assert_problem
from tests.api.write_operations import concrete, fill, objects, valid_body, write_operations
from tests.factories import make_post, make_user

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY])


def counts() -> tuple[int, ...]:
    models = (User, Post, UserProfile, AnalyticsEvent, LegacyCustomer, IdempotencyRecord)
    return tuple(model.objects.count() for model in models)


def unknown_errors(body: dict) -> dict[str, str]:
    return {e["field"]: e["message"] for e in body["errors"] if e["code"] == "unknown_field"}


def test_the_operations_are_found() -> None:
    found = set(write_operations())
    assert ("POST", "/api/v1/posts/") in found and ("PATCH", "/api/v1/legacy/customers/{customer_id}/") in found
    assert ("POST", "/api/v1/analytics/events/batch/") in found and ("POST", "/api/v1/registrations/") in found


@override_settings(LEGACY_ALLOW_WRITES=True)
@pytest.mark.parametrize(("method", "path"), write_operations())
def test_every_write_refuses_each_unknown_field_and_writes_nothing(staff_client, method, path) -> None:
    ids = objects()
    url = concrete(path, ids)
    body = fill(valid_body(path, 1), ids)
    before = counts()
    extra = {**body, "pad": 1, "zz top": {"x": 1}, "id": 5, "created_at": "2026-11-25T10:00:00Z"}
    answer = assert_problem(staff_client.generic(method, url, _json(extra), content_type="application/json"), 400)
    assert set(unknown_errors(answer)) == {"pad", "zz top", "id", "created_at"}, answer["errors"]
    assert len(answer["errors"]) == 4, answer["errors"]  # the known fields were valid
    # With an Idempotency-Key: the same refusal, and the key is not used up.
    headers = {"HTTP_IDEMPOTENCY_KEY": f"k-{method}-{path}"}
    response = staff_client.generic(method, url, _json(extra), content_type="application/json", **headers)
    assert set(unknown_errors(assert_problem(response, 400))) == {"pad", "zz top", "id", "created_at"}
    assert counts() == before
    # The same body without them is written: the refusal was about the unknown fields only.
    response = staff_client.generic(method, url, _json(body), content_type="application/json")
    assert response.status_code in (200, 201), response.content[:300]


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def test_a_misnamed_field_is_refused_instead_of_taking_its_default(staff_client) -> None:
    author = make_user()
    answer = assert_problem(
        staff_client.post("/api/v1/posts/", {"title": "x", "body": "y", "author_id": author.pk}, format="json"),
        400,
        "body",
    )
    assert answer["errors"] == [
        {
            "field": "body",
            "code": "unknown_field",
            "message": "Unknown field; this object takes title, content, author_id.",
        }
    ]
    assert not Post.objects.exists()


def test_unknown_fields_are_named_with_the_other_errors(staff_client) -> None:
    answer = assert_problem(staff_client.post("/api/v1/posts/", {"title": "", "pad": 1}, format="json"), 400)
    assert {(e["field"], e["code"]) for e in answer["errors"]} == {
        ("title", "blank"),
        ("author_id", "required"),
        ("pad", "unknown_field"),
    }


def test_patch_refuses_unknown_fields_too(staff_client) -> None:
    post = make_post(title="kept")
    response = staff_client.patch(f"/api/v1/posts/{post.pk}/", {"titel": "typo"}, format="json")
    assert_problem(response, 400, "titel")
    post.refresh_from_db()
    assert post.title == "kept"


def test_nested_objects_are_checked_with_their_path(staff_client) -> None:
    body = {"username": "ada", "email": "ada@example.com", "profile": {"bio": "b", "pad": 1, "avatar": "x"}}
    answer = assert_problem(staff_client.post("/api/v1/registrations/", body, format="json"), 400)
    assert set(unknown_errors(answer)) == {"profile.pad", "profile.avatar"}
    assert "bio, avatar_url" in unknown_errors(answer)["profile.pad"]
    assert not User.objects.exists()


def test_each_batch_item_is_checked_with_its_index(staff_client) -> None:
    events = [{"event_type": "v"} for _ in range(5)]
    events[3] = {"event_type": "v", "pad": 1}
    events[4] = {"event_type": "", "typ": "x"}
    body = {"events": events, "meta": {}}
    answer = assert_problem(staff_client.post("/api/v1/analytics/events/batch/", body, format="json"), 400)
    assert {(e["field"], e["code"]) for e in answer["errors"]} == {
        ("events[3].pad", "unknown_field"),
        ("events[4].typ", "unknown_field"),
        ("events[4].event_type", "blank"),
        ("meta", "unknown_field"),
    }
    # Only the unknown key: the batch's fast path leaves it to the serializer, which refuses it.
    answer = assert_problem(
        staff_client.post("/api/v1/analytics/events/batch/", {"events": events[:4]}, format="json"), 400
    )
    assert [e["field"] for e in answer["errors"]] == ["events[3].pad"]
    assert not AnalyticsEvent.objects.exists()


def test_free_form_data_keeps_any_keys(staff_client) -> None:
    data = {"pad": 1, "id": 2, "nested": {"anything": [{"goes": True}]}}
    assert (
        staff_client.post("/api/v1/analytics/events/", {"event_type": "v", "data": data}, format="json").status_code
        == 201
    )
    batch = {"events": [{"event_type": "v", "data": data}]}
    assert staff_client.post("/api/v1/analytics/events/batch/", batch, format="json").status_code == 201
    assert [e.data for e in AnalyticsEvent.objects.all()] == [data, data]


def test_many_unknown_fields_are_named_up_to_a_bound(staff_client) -> None:
    body = {"event_type": "v", **{f"k{i}": i for i in range(MAX_NAMED + 7)}, "x" * 500: 1}
    answer = assert_problem(staff_client.post("/api/v1/analytics/events/", body, format="json"), 400)
    named = [e for e in answer["errors"] if e["field"]]
    assert [e["field"] for e in named] == [f"k{i}" for i in range(MAX_NAMED)]
    assert answer["errors"][-1] == {
        "field": None,
        "code": "unknown_field",
        "message": "8 more unknown fields not named here.",
    }
    long = {"event_type": "v", "y" * 500: 1}
    answer = assert_problem(staff_client.post("/api/v1/analytics/events/", long, format="json"), 400)
    assert answer["errors"][0]["field"] == "y" * 100 + "..."


@pytest.mark.parametrize("body", [b"[]", b"[{}]", b'"title"', b"1", b"null", b"true"])
@pytest.mark.parametrize("url", ["/api/v1/posts/", "/api/v1/analytics/events/batch/", "/api/v1/registrations/"])
def test_a_body_that_is_not_an_object_is_400(staff_client, body, url) -> None:
    answer = assert_problem(staff_client.generic("POST", url, body, content_type="application/json"), 400)
    assert [(e["field"], e["code"]) for e in answer["errors"]] == [(None, "null" if body == b"null" else "invalid")]


def test_a_batch_item_that_is_not_an_object_is_400_naming_it(staff_client) -> None:
    body = {"events": [{"event_type": "v"}, ["event_type", "v"]]}
    assert_problem(staff_client.post("/api/v1/analytics/events/batch/", body, format="json"), 400, "events[1]")
