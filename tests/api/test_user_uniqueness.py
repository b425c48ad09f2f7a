"""One definition of "the same user" on ``POST /users/`` and ``POST /registrations/``: usernames
unique by their look-alike key (confusable skeleton, case folded) and emails whatever their case,
usernames NFKC-normalised and limited to Django's UnicodeUsernameValidator characters; the same 400
answer from both endpoints (look-alikes: tests/api/test_username_look_alikes.py)."""

from __future__ import annotations

import pytest

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.errors import FieldErrors
from core.services import registration, saga
from core.users import services as users_services
from core.users.models import User
from tests.api.conftest import assert_problem
from tests.factories import api_client

USERS_URL = "/api/v1/users/"
REG_URL = "/api/v1/registrations/"
DBS = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE]
pytestmark = pytest.mark.django_db(databases=DBS)


def _post_both(body: dict) -> list:
    staff = api_client(staff=True)
    return [staff.post(USERS_URL, body, format="json"), staff.post(REG_URL, body, format="json")]


def test_case_variants_of_username_and_email_are_unique_on_both_endpoints() -> None:
    first = api_client().post(REG_URL, {"username": "qa_reg1", "email": "qa_reg1@example.com"}, format="json")
    assert first.status_code == 201, first.content
    for body, field in (
        ({"username": "QA_REG1", "email": "fresh@example.com"}, "username"),
        ({"username": "fresh", "email": "QA_REG1@EXAMPLE.com"}, "email"),
        ({"username": "ｑａ＿ｒｅｇ１", "email": "fresh2@example.com"}, "username"),  # fullwidth look-alike
    ):
        # POST /users/ answers 400; a registration 409 for a taken email (docs/security.md), 400 otherwise.
        answers = [
            assert_problem(r, status, field)
            for r, status in zip(_post_both(body), (400, 409 if field == "email" else 400))
        ]
        for answer in answers:
            assert answer["errors"] == [
                {"field": field, "code": "unique", "message": users_services.UNIQUE_MESSAGES[field]}
            ]
            assert answer["detail"] == users_services.UNIQUE_MESSAGES[field]
        assert (answers[1]["step"], answers[1]["alias"]) == (registration.STEP_USER, aliases.USERS)
    assert User.objects.count() == 1


@pytest.mark.parametrize("username", ["a b", "a\u200bb", "a\x07b", "a/b", "a\u00a0b"])
def test_usernames_outside_the_validator_rules_are_400_on_both_endpoints(username: str) -> None:
    for response in _post_both({"username": username, "email": "x@example.com"}):
        body = assert_problem(response, 400, "username")
        assert {e["code"] for e in body["errors"]} == {"invalid"}
    assert User.objects.count() == 0


def test_usernames_are_stored_nfkc_normalised() -> None:
    response = api_client(staff=True).post(
        USERS_URL, {"username": "ｎｅｏ.１", "email": "n@example.com"}, format="json"
    )
    assert response.status_code == 201 and response.json()["username"] == "neo.1"
    staff = api_client(staff=True)
    other = staff.post(USERS_URL, {"username": "trinity", "email": "t@example.com"}, format="json").json()
    renamed = staff.patch(f"{USERS_URL}{other['id']}/", {"username": "NEO.1"}, format="json")
    assert_problem(renamed, 400, "username")


def test_users_db_refuses_a_case_variant_that_races_past_the_check(monkeypatch) -> None:
    users_services.user_create(username="ada", email="ada@example.com")
    with pytest.raises(saga.SagaStepInvalid) as checked:  # the check inside the create_user step
        saga.run(
            registration.DEFINITION,
            {
                "user": {"username": "ADA", "email": "c@example.com", "first_name": "", "last_name": ""},
                "profile": {"bio": "", "avatar_url": ""},
            },
        )
    assert checked.value.errors == {"username": [("unique", users_services.UNIQUE_MESSAGES["username"])]}
    # A race past the check (simulated by skipping it): the unique LOWER(username) index refuses it.
    monkeypatch.setattr(users_services, "check_unique", lambda **kwargs: None)
    with pytest.raises(FieldErrors) as caught:
        users_services._save(User(username="ADA", email="other@example.com"))
    assert caught.value.errors == {"username": [("unique", users_services.UNIQUE_MESSAGES["username"])]}
    with pytest.raises(saga.SagaStepConflict) as conflict:
        saga.run(
            registration.DEFINITION,
            {
                "user": {"username": "Ada", "email": "b@example.com", "first_name": "", "last_name": ""},
                "profile": {"bio": "", "avatar_url": ""},
            },
        )
    assert (conflict.value.field, conflict.value.step) == ("username", registration.STEP_USER)
    assert User.objects.count() == 1


def test_a_race_answered_by_the_saga_is_the_same_400(monkeypatch) -> None:
    users_services.user_create(username="ada", email="ada@example.com")
    # The race itself (another request inserting between check and write) is simulated by skipping the check.
    monkeypatch.setattr(users_services, "check_unique", lambda **kwargs: None)
    response = api_client().post(REG_URL, {"username": "ADA", "email": "b@example.com"}, format="json")
    body = assert_problem(response, 400, "username")
    assert body["errors"][0]["code"] == "unique" and body["detail"] == users_services.UNIQUE_MESSAGES["username"]
    assert (body["step"], body["alias"]) == (registration.STEP_USER, aliases.USERS)
    assert "step" not in body["detail"] and User.objects.count() == 1


@pytest.mark.parametrize("event_type", ["a\x07b", "tab\there", "zero\u200bwidth", "line\u2028sep"])
def test_event_types_with_control_characters_are_400(event_type: str) -> None:
    client = api_client()
    assert_problem(
        client.post("/api/v1/analytics/events/", {"event_type": event_type}, format="json"), 400, "event_type"
    )
    batch = client.post(
        "/api/v1/analytics/events/batch/", {"events": [{"event_type": "ok"}, {"event_type": event_type}]}, format="json"
    )
    assert_problem(batch, 400, "events[1].event_type")
    with pytest.raises(FieldErrors):
        from core.analytics.services import event_batch_create

        event_batch_create(events=[{"event_type": event_type}])
    assert AnalyticsEvent.objects.count() == 0
