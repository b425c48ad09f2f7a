"""Read-your-writes without cookies (issue 15, item 3): a frontend on another origin does not get
the SameSite=Lax pin cookie back to the API, so it sends the pin header of a write's answer on its
next reads. Against two stand-in replicas of users_db (separate databases, nothing replicated):
a user written to the primary is missing on the replicas, so where a read went is proven by
whether it finds the user."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from core import aliases
from routers.middleware import parse_pin
from tests.conftest import standin_replicas
from tests.factories import api_client

REPLICAS = standin_replicas()
pytestmark = [
    pytest.mark.standin_replica,
    pytest.mark.django_db(transaction=True, databases=[aliases.DEFAULT, aliases.USERS, *REPLICAS]),
]


def test_the_pin_header_sent_back_reads_the_write() -> None:
    assert REPLICAS, "this pass needs stand-in replicas"
    writer = api_client(staff=True)
    created = writer.post("/api/v1/users/", {"username": "pinned", "email": "pinned@example.com"}, format="json")
    assert created.status_code == 201
    pin = created[settings.REPLICA_PIN_HEADER]
    assert aliases.USERS in parse_pin(pin, time.time())
    path = created["Location"]

    browser = api_client(staff=True)  # a fresh client: no cookie jar shared with the write
    assert browser.get(path).status_code == 404  # the replica has not seen the write
    read = browser.get(path, HTTP_X_SWITCHYARD_PIN=pin)
    assert read.status_code == 200, read.content
    assert read.json()["username"] == "pinned"
    assert read["Server-Timing"].startswith(aliases.USERS + ";") or f"{aliases.USERS};" in read["Server-Timing"]
