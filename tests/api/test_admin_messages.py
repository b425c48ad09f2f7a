"""The admin's messages still work with the lazily built message storage; API answers set no
message cookie."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from core import aliases
from tests.factories import api_client

pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])


def test_an_admin_change_shows_its_message_on_the_next_page() -> None:
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-not-used")
    client = Client()
    client.force_login(admin)
    response = client.post("/admin/auth/group/add/", {"name": "editors"}, follow=True)
    assert response.status_code == 200
    assert Group.objects.filter(name="editors").exists()
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1 and "editors" in shown[0] and "added successfully" in shown[0]
    # Shown once: the next page has no message left.
    again = client.get("/admin/auth/group/")
    assert [str(m) for m in again.context["messages"]] == []


def test_an_api_answer_sets_no_message_cookie() -> None:
    response = api_client().get("/api/v1/users/")
    assert response.status_code == 200
    assert "messages" not in response.cookies
