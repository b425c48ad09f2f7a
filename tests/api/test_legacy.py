"""``/api/v1/legacy/customers/``: the legacy MySQL table, read-only unless the setting allows writes."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core import aliases
from core.legacy.models import LegacyCustomer
from tests.api.conftest import assert_problem
from tests.factories import make_customer

URL = "/api/v1/legacy/customers/"
pytestmark = pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.LEGACY])


def test_needs_a_token() -> None:
    assert_problem(APIClient().get(URL), 401)


def test_list_search_ordering_pagination(client_) -> None:
    ann = make_customer(customer_name="Ann Lee", customer_email="ann@shop.example")
    bo = make_customer(customer_name="Bo Chan", customer_email="bo@other.example")
    cy = make_customer(customer_name="Cy Ann", customer_email="cy@shop.example")

    def ids(**params: object) -> list[int]:
        response = client_.get(URL, params)
        assert response.status_code == 200, response.content
        return [c["customer_id"] for c in response.json()["results"]]

    assert ids() == [ann.pk, bo.pk, cy.pk]
    assert ids(search="ann") == [ann.pk, cy.pk]
    assert ids(search="other.example") == [bo.pk]
    assert ids(ordering="-customer_name") == [cy.pk, bo.pk, ann.pk]
    assert ids(page_size=2, page=2) == [cy.pk]
    assert_problem(client_.get(URL, {"ordering": "password"}), 400, "ordering")
    assert_problem(client_.get(URL, {"customer_name": "x"}), 400, "customer_name")


def test_list_query_counts_constant_in_page_size(client_) -> None:
    for _ in range(12):
        make_customer()
    counts = []
    for size in (5, 50):
        with (
            CaptureQueriesContext(connections[aliases.DEFAULT]) as default,
            CaptureQueriesContext(connections[aliases.LEGACY]) as legacy,
        ):
            assert client_.get(URL, {"page_size": size}).status_code == 200
        counts.append((len(default), len(legacy)))
    assert counts == [(2, 2), (0, 2)]  # the token is looked up (and its use stamped) once, then remembered


def test_retrieve(client_) -> None:
    customer = make_customer()
    body = client_.get(f"{URL}{customer.pk}/").json()
    assert body["customer_email"] == customer.customer_email
    assert set(body) == {"customer_id", "customer_name", "customer_email", "created_date"}
    assert_problem(client_.get(f"{URL}{customer.pk + 50}/"), 404)
    assert_problem(client_.get(f"{URL}{2**40}/"), 404)


@override_settings(LEGACY_ALLOW_WRITES=True)
def test_writes_need_staff(client_) -> None:
    customer = make_customer()
    assert_problem(client_.post(URL, {"customer_name": "x", "customer_email": "x@example.com"}, format="json"), 403)
    assert_problem(client_.delete(f"{URL}{customer.pk}/"), 403)


@override_settings(LEGACY_ALLOW_WRITES=False)
def test_writes_are_refused_with_405_while_the_setting_is_off(staff_client, client_) -> None:
    customer = make_customer()
    response = staff_client.post(URL, {"customer_name": "x", "customer_email": "x@example.com"}, format="json")
    assert_problem(response, 405)
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert_problem(staff_client.patch(f"{URL}{customer.pk}/", {"customer_name": "y"}, format="json"), 405)
    assert_problem(staff_client.delete(f"{URL}{customer.pk}/"), 405)
    assert_problem(staff_client.post(URL, {"customer_name": 5}, format="json"), 405)  # before validation
    assert_problem(staff_client.post(URL, {}, format="json"), 405)
    assert_problem(client_.post(URL, {}, format="json"), 405)  # the method does not exist here, staff or not
    assert_problem(APIClient().post(URL, {}, format="json"), 401)
    assert LegacyCustomer.objects.get(pk=customer.pk).customer_name == customer.customer_name


@override_settings(LEGACY_ALLOW_WRITES=False)
def test_the_router_refuses_legacy_writes_by_itself() -> None:
    from core.legacy import services
    from routers.primary import LegacyWriteForbidden

    with pytest.raises(LegacyWriteForbidden):
        services.customer_create(customer_name="x", customer_email="x@example.com")
    assert not LegacyCustomer.objects.filter(customer_email="x@example.com").exists()


@override_settings(LEGACY_ALLOW_WRITES=True)
def test_staff_writes_when_allowed(staff_client) -> None:
    response = staff_client.post(URL, {"customer_name": "New", "customer_email": "new@example.com"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["customer_id"]
    assert (
        staff_client.patch(f"{URL}{pk}/", {"customer_name": "Renamed"}, format="json").json()["customer_name"]
        == "Renamed"
    )
    assert_problem(
        staff_client.post(URL, {"customer_name": "x" * 101, "customer_email": "bad"}, format="json"),
        400,
        "customer_name",
        "customer_email",
    )
    assert staff_client.delete(f"{URL}{pk}/").status_code == 204
    assert not LegacyCustomer.objects.filter(pk=pk).exists()


@pytest.mark.real_engines
@override_settings(LEGACY_ALLOW_WRITES=True)
def test_utf8mb4_text_round_trips_through_mariadb(staff_client) -> None:
    name = "Zoë 🚀 顧客 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
    response = staff_client.post(URL, {"customer_name": name, "customer_email": "emoji@example.com"}, format="json")
    assert response.status_code == 201, response.content
    pk = response.json()["customer_id"]
    assert connections[aliases.LEGACY].vendor == "mysql"
    with connections[aliases.LEGACY].cursor() as cursor:
        cursor.execute("SELECT customer_name, CHAR_LENGTH(customer_name) FROM customers WHERE customer_id = %s", [pk])
        stored, length = cursor.fetchone()
    assert stored == name and length == len(name)
    assert staff_client.get(f"{URL}{pk}/").json()["customer_name"] == name
    found = staff_client.get(URL, {"search": "🚀"}).json()["results"]
    assert [c["customer_id"] for c in found] == [pk]


def test_the_schema_documents_legacy_writes_only_when_allowed() -> None:
    from django.conf import settings
    from drf_spectacular.generators import SchemaGenerator

    assert settings.LEGACY_ALLOW_WRITES is False  # the default the committed schema is generated with
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert set(paths["/api/v1/legacy/customers/"]) == {"get"}
    assert set(paths["/api/v1/legacy/customers/{customer_id}/"]) == {"get", "parameters"} or set(
        paths["/api/v1/legacy/customers/{customer_id}/"]
    ) == {"get"}
