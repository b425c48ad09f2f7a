"""The read-only admin (issue 15, item 9): saga runs and steps, idempotency records and API tokens
are shown to staff; nothing can be added, changed or deleted; never a token's key or digest."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import TokenProxy

from core.models import IdempotencyRecord, SagaRun, SagaStep
from core.tokens.models import ApiToken
from tests.factories import api_client

pytestmark = pytest.mark.django_db(databases="__all__")

PAGES = {
    SagaRun: "/admin/core/sagarun/",
    SagaStep: "/admin/core/sagastep/",
    IdempotencyRecord: "/admin/core/idempotencyrecord/",
    ApiToken: "/admin/tokens/apitoken/",
}


@pytest.fixture
def operator() -> Client:
    account = get_user_model().objects.create_superuser("operator", "op@example.com", "not-used-pw-123")
    client = Client()
    client.force_login(account)
    return client


@pytest.fixture
def history() -> dict:
    """A registration (saga run with steps), a write with an Idempotency-Key, and tokens."""
    writer = api_client(staff=True)
    registered = writer.post(
        "/api/v1/registrations/", {"username": "admin_seen", "email": "seen@example.com"}, format="json"
    )
    assert registered.status_code == 201
    created = writer.post(
        "/api/v1/analytics/events/", {"event_type": "click"}, format="json", HTTP_IDEMPOTENCY_KEY="admin-visible-key"
    )
    assert created.status_code == 201
    token = ApiToken.objects.order_by("-id").first()
    return {"run": SagaRun.objects.order_by("-id").first(), "token": token}


def test_operator_sees_saga_runs_steps_idempotency_and_tokens(operator, history) -> None:
    run, token = history["run"], history["token"]
    assert run is not None and run.steps.count() >= 3
    listing = operator.get(PAGES[SagaRun]).content.decode()
    assert run.name in listing and run.status in listing
    detail = operator.get(f"{PAGES[SagaRun]}{run.pk}/change/").content.decode()
    for step in run.steps.all():
        assert step.name in detail and step.alias in detail
    assert "seen@example.com" not in detail  # the saga's context (personal data) is not shown
    assert operator.get(PAGES[SagaStep]).status_code == 200

    records = operator.get(PAGES[IdempotencyRecord]).content.decode()
    assert "admin-visible-key" in records
    record = IdempotencyRecord.objects.get(key="admin-visible-key")
    record_page = operator.get(f"{PAGES[IdempotencyRecord]}{record.pk}/change/").content.decode()
    assert record.scope not in record_page and record.scope.removeprefix("token:") not in record_page

    tokens = operator.get(PAGES[ApiToken]).content.decode()
    assert token.prefix in tokens
    token_page = operator.get(f"{PAGES[ApiToken]}{token.pk}/change/").content.decode()
    assert token.prefix in token_page
    for secret in (token.digest, token.digest[:40]):
        assert secret not in tokens and secret not in token_page


@pytest.mark.parametrize("model", list(PAGES))
def test_nothing_can_be_written(operator, history, model) -> None:
    obj = model.objects.order_by("-id").first()
    assert obj is not None
    page = PAGES[model]
    assert operator.get(f"{page}add/").status_code == 403
    change = operator.get(f"{page}{obj.pk}/change/")
    assert change.status_code == 200 and b'name="_save"' not in change.content
    assert operator.post(f"{page}{obj.pk}/change/", {}).status_code == 403
    assert operator.post(f"{page}{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_the_plain_key_token_admin_is_not_registered() -> None:
    assert not admin.site.is_registered(TokenProxy)
    assert all(admin.site.is_registered(model) for model in (SagaRun, SagaStep, IdempotencyRecord, ApiToken))


def test_the_admin_needs_a_staff_login(history) -> None:
    response = Client().get(PAGES[ApiToken])
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
