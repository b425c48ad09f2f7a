"""``GET /health``: liveness answers from the process and touches no database."""

import pytest
from django.test import Client


@pytest.mark.django_db(databases=[])
def test_liveness_answers_pass_without_touching_any_database():
    response = Client().get("/health")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/health+json"
    assert response.json() == {"status": "pass"}


@pytest.mark.django_db(databases=[])
def test_liveness_needs_no_token_and_only_answers_get():
    assert Client().post("/health").status_code == 405
