"""``POST /api/v1/registrations/`` and its ``Idempotency-Key``."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import UserProfile
from core.models import IdempotencyRecord
from core.services import saga
from core.services.registration import STEP_EVENT
from core.users.models import User
from tests.factories import api_client, make_account, make_user
from tests.sagas.faults import row_counts, unreachable

URL = "/api/v1/registrations/"
DBS = [
    aliases.DEFAULT,
    aliases.USERS,
    aliases.ANALYTICS,
    aliases.CACHE,
]  # cache_db: deleting a user drops its cached stats
BODY = {"username": "ada", "email": "ada@example.com", "first_name": "Ada", "profile": {"bio": "Maths"}}


@pytest.mark.django_db(databases=DBS)
def test_registration_answers_201_with_user_and_profile():
    response = api_client().post(URL, BODY, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"user", "profile"}
    assert body["user"]["username"] == "ada" and body["user"]["email"] == "ada@example.com"
    assert body["profile"] == {**body["profile"], "user_id": body["user"]["id"], "bio": "Maths", "avatar_url": ""}
    assert AnalyticsEvent.objects.filter(user_id=body["user"]["id"], event_type="user_registered").count() == 1


@pytest.mark.django_db(databases=[aliases.DEFAULT])
def test_registration_needs_a_token():
    from rest_framework.test import APIClient

    assert APIClient().post(URL, BODY, format="json").status_code == 401


@pytest.mark.django_db(databases=DBS)
def test_taken_username_is_400_unique_naming_the_step():
    make_user(username="ada", email="other@example.com")
    response = api_client().post(URL, BODY, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["step"], problem["alias"]) == (400, "create_user", aliases.USERS)
    assert problem["detail"] == "A user with this username, or one that looks the same, already exists."
    assert problem["errors"] == [{"field": "username", "code": "unique", "message": problem["detail"]}]


@pytest.mark.django_db(databases=DBS)
def test_invalid_profile_url_is_400_before_any_write():
    before = row_counts()
    response = api_client().post(URL, {**BODY, "profile": {"avatar_url": "not a url"}}, format="json")
    assert response.status_code == 400
    assert "avatar_url" in response.content.decode()
    assert row_counts() == before


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_unreachable_analytics_is_503_naming_the_step_and_nothing_is_kept():
    client = api_client()
    before = row_counts()
    with unreachable(aliases.ANALYTICS):
        response = client.post(URL, BODY, format="json")
    assert response.status_code == 503
    problem = response.json()
    assert (problem["step"], problem["alias"]) == (STEP_EVENT, aliases.ANALYTICS)
    assert response["Retry-After"] == "5"
    assert row_counts() == before


# --- Idempotency-Key ---------------------------------------------------------------------------
@pytest.mark.django_db(databases=DBS)
def test_same_key_same_body_replays_the_first_answer_without_writing(queries):
    client = api_client()
    first = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 201
    with queries(aliases.USERS) as on_users, queries(aliases.ANALYTICS) as on_analytics:
        again = client.post(URL, {**BODY, "profile": {"bio": "Maths"}}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert len(on_users) == 0 and len(on_analytics) == 0
    assert User.objects.filter(username="ada").count() == 1
    assert UserProfile.objects.count() == 1


@pytest.mark.django_db(databases=DBS)
def test_same_key_other_body_is_422():
    client = api_client()
    assert client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-2").status_code == 201
    response = client.post(URL, {**BODY, "username": "bob"}, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not User.objects.filter(username="bob").exists()


@pytest.mark.django_db(databases=DBS)
def test_an_error_answer_given_after_a_write_is_replayed(monkeypatch):
    """A saga that started writing and was refused (a race past the uniqueness check) ran: its
    answer is stored and replayed, not run again."""
    from core.users import services as users_services

    make_user(username="ada", email="other@example.com")
    monkeypatch.setattr(users_services, "check_unique", lambda **kwargs: None)  # the race, simulated
    client = api_client()
    first = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    again = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert first.status_code == again.status_code == 400
    assert first.json()["step"] == "create_user" and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again["Content-Type"] == "application/problem+json"


@pytest.mark.django_db(databases=DBS)
def test_a_validation_failure_does_not_use_up_the_key():
    """Stripe's rule: a 4xx before any write is not stored; the corrected body may use the key."""
    client = api_client()
    bad = client.post(URL, {**BODY, "email": "not-an-email"}, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert bad.status_code == 400
    assert not IdempotencyRecord.objects.exists()
    spaced = client.post(URL, {**BODY, "username": "a d a"}, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert spaced.status_code == 400 and not IdempotencyRecord.objects.exists()
    good = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert good.status_code == 201, good.content
    replay = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_a_503_releases_the_key_so_a_retry_runs():
    client = api_client()
    with unreachable(aliases.ANALYTICS):
        assert client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-4").status_code == 503
    assert not IdempotencyRecord.objects.exists()
    assert client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-4").status_code == 201


@pytest.mark.django_db(databases=DBS)
def test_keys_are_scoped_per_token():
    assert api_client().post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    other = api_client().post(
        URL, {**BODY, "username": "bob", "email": "bob@example.com"}, format="json", HTTP_IDEMPOTENCY_KEY="shared"
    )
    assert other.status_code == 201 and other.json()["user"]["username"] == "bob"
    assert IdempotencyRecord.objects.count() == 2
    assert all(r.scope.startswith("token:") and len(r.scope) == 46 for r in IdempotencyRecord.objects.all())


@pytest.mark.django_db(databases=DBS)
def test_expired_key_is_claimed_anew():
    client = api_client()
    assert client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old").status_code == 201
    IdempotencyRecord.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    again = client.post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="old")
    assert again.status_code == 409  # it ran again: the username and the email are taken (email: 409)
    assert "Idempotent-Replayed" not in again


@override_settings(IDEMPOTENCY_TTL_SECONDS=3600)
@pytest.mark.django_db(databases=DBS)
def test_key_expiry_follows_the_setting():
    api_client().post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="ttl")
    record = IdempotencyRecord.objects.get()
    assert abs((record.expires_at - record.created_at).total_seconds() - 3600) < 5


@pytest.mark.django_db(databases=DBS)
def test_too_long_key_is_400():
    response = api_client().post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_two_concurrent_requests_with_one_key_write_once():
    """The second request arrives while the first is inside its saga: 409, then replay; one user."""
    _, token = make_account()
    first_inside = threading.Event()
    second_answered = threading.Event()
    answers: dict[str, object] = {}

    def hold(point: str, name: str) -> None:
        if point == "before" and name == "create_user":
            first_inside.set()
            assert second_answered.wait(10)

    def first() -> None:
        try:
            with saga.step_hook(hold):
                answers["first"] = api_client(token=token).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race")
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_inside.wait(10)
        answers["second"] = api_client(token=token).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race")
    finally:
        second_answered.set()
        thread.join(20)
    assert answers["second"].status_code == 409
    assert answers["second"]["Retry-After"] == "1"
    assert answers["first"].status_code == 201
    third = api_client(token=token).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race")
    assert third.status_code == 201 and third.json() == answers["first"].json()
    assert User.objects.filter(username="ada").count() == 1
    assert UserProfile.objects.count() == 1
    assert AnalyticsEvent.objects.filter(event_type="user_registered").count() == 1


@pytest.mark.django_db(databases=DBS, transaction=True)
def test_two_threads_racing_to_claim_one_key_write_once():
    """Both start together (a barrier); whichever loses the insert gets 409 or the replay."""
    _, token = make_account()
    barrier = threading.Barrier(2)
    answers: list = []

    def post() -> None:
        try:
            barrier.wait(10)
            answers.append(api_client(token=token).post(URL, BODY, format="json", HTTP_IDEMPOTENCY_KEY="race-2"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([201, 201], [201, 409])
    if statuses == [201, 201]:
        assert sum(a.has_header("Idempotent-Replayed") for a in answers) == 1
    assert User.objects.filter(username="ada").count() == 1
