"""``/api/v1/legacy/customers/``: the legacy MySQL table, read-only unless the setting allows writes;
names and emails are personal data (null without ``pii:read``, and no search or ordering on them)."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from api import conditional
from core import aliases
from core.legacy.models import LegacyCustomer
from tests.api.conftest import assert_problem
from tests.factories import api_client, make_customer

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


# --- personal data: the users' rules (docs/security.md) -------------------------------------------
PII = ("customer_name", "customer_email")


def test_names_and_emails_are_null_without_pii_read_in_the_list_and_the_detail() -> None:
    customer = make_customer(customer_name="Ann Lee", customer_email="ann@shop.example")
    readers = {
        "read": (api_client(scopes=["read"]), False),
        "bound": (api_client(scopes=["read"], user_id=customer.pk), False),  # no token is bound to a customer
        "legacy:write": (api_client(scopes=["legacy:write"]), False),  # a write scope never implies pii:read
        "pii": (api_client(scopes=["read", "pii:read"]), True),
        "staff": (api_client(staff=True), True),
    }
    tags = {}
    for name, (client, shown) in readers.items():
        listed = client.get(URL).json()["results"]
        detail = client.get(f"{URL}{customer.pk}/")
        assert detail.status_code == 200, (name, detail.content)
        assert [c for c in listed if c["customer_id"] == customer.pk] == [detail.json()], name
        want = ("Ann Lee", "ann@shop.example") if shown else (None, None)
        assert tuple(detail.json()[field] for field in PII) == want, name
        assert detail.json()["created_date"] and detail.json()["customer_id"] == customer.pk
        assert detail["ETag"] == conditional.etag_of(detail.json()), name  # the tag of what this caller sees
        tags[name] = detail["ETag"]
    assert tags["read"] == tags["legacy:write"] != tags["pii"] == tags["staff"]
    # A guessed email cannot be confirmed through a conditional read either.
    guessed = conditional.etag_of(
        {
            **readers["read"][0].get(f"{URL}{customer.pk}/").json(),
            **dict(zip(PII, ("Ann Lee", "ann@shop.example"), strict=True)),
        }
    )
    assert readers["read"][0].get(f"{URL}{customer.pk}/", HTTP_IF_NONE_MATCH=guessed).status_code == 200


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            {"search": "ann@shop.example"},
            "Searching legacy customers (on names and emails) needs a token with the `pii:read` scope.",
        ),
        (
            {"search": "x" * 500},
            "Searching legacy customers (on names and emails) needs a token with the `pii:read` scope.",
        ),
        ({"ordering": "customer_email"}, "Ordering by `customer_email` needs a token with the `pii:read` scope."),
        ({"ordering": "-customer_name"}, "Ordering by `customer_name` needs a token with the `pii:read` scope."),
        (
            {"ordering": "created_date,-customer_email"},
            "Ordering by `customer_email` needs a token with the `pii:read` scope.",
        ),
    ],
)
def test_search_and_ordering_on_names_and_emails_need_pii_read(query: dict, detail: str) -> None:
    make_customer(customer_email="ann@shop.example")
    for scopes in (["read"], ["legacy:write"]):
        client = api_client(scopes=scopes)
        with CaptureQueriesContext(connections[aliases.LEGACY]) as legacy:
            body = assert_problem(client.get(URL, query), 403)
        assert len(legacy) == 0  # refused before the legacy database is asked anything
        assert body["required_scope"] == "pii:read" and body["detail"] == detail
    allowed = api_client(scopes=["read", "pii:read"]).get(URL, query)
    assert allowed.status_code == (400 if len(query.get("search", "")) > 200 else 200), allowed.content


def test_the_refusal_is_the_users_refusal() -> None:
    """Same problem type, title, code and member as users' search refusal; only the wording names the resource."""
    client = api_client(scopes=["read"])
    users = assert_problem(client.get("/api/v1/users/", {"search": "ann"}), 403)
    customers = assert_problem(client.get(URL, {"search": "ann"}), 403)
    assert users.pop("detail").replace(
        "users (on emails and names)", "legacy customers (on names and emails)"
    ) == customers.pop("detail")
    for body in (users, customers):
        body.pop("instance", None)
        body.pop("request_id", None)
        for error in body["errors"]:
            error.pop("message", None)
    assert users == customers


def test_without_pii_read_the_other_queries_still_answer_and_an_unknown_field_stays_a_400() -> None:
    ann = make_customer(customer_name="Ann")
    bo = make_customer(customer_name="Bo")
    client = api_client(scopes=["read"])
    assert [c["customer_id"] for c in client.get(URL, {"ordering": "-customer_id"}).json()["results"]][:2] == [
        bo.pk,
        ann.pk,
    ]
    assert (
        client.get(URL, {"ordering": "created_date", "search": ""}).status_code == 200
    )  # an empty search is no search
    assert_problem(client.get(URL, {"ordering": "customer_email,password"}), 400, "ordering")


def test_redacted_list_query_counts_are_the_same_as_the_full_list() -> None:
    for _ in range(12):
        make_customer()
    counts = {}
    for name, client in {"read": api_client(scopes=["read"]), "pii": api_client(scopes=["read", "pii:read"])}.items():
        client.get(URL)  # the token is looked up (and its use stamped) once, then remembered
        for size in (5, 50):
            with CaptureQueriesContext(connections[aliases.LEGACY]) as legacy:
                response = client.get(URL, {"page_size": size})
            assert response.status_code == 200
            names = {c["customer_name"] for c in response.json()["results"]}
            assert (names == {None}) == (name == "read")
            counts[(name, size)] = len(legacy)
    assert counts == {("read", 5): 2, ("read", 50): 2, ("pii", 5): 2, ("pii", 50): 2}  # COUNT and the page


@override_settings(LEGACY_ALLOW_WRITES=True)
def test_a_write_answers_the_customer_as_a_read_answers_it_to_the_same_token() -> None:
    """legacy:write alone (a staff account) reads customers (a write scope reads its resource) with
    names and emails null: its writes answer the same, and with pii:read both show them."""
    for scopes, shown in ((["legacy:write"], False), (["legacy:write", "pii:read"], True)):
        client = api_client(scopes=scopes)
        created = client.post(URL, {"customer_name": "New", "customer_email": "new@example.com"}, format="json")
        assert created.status_code == 201, created.content
        assert (created.json()["customer_name"] is not None) == shown
        read = client.get(created["Location"])
        assert read.status_code == 200 and read.json() == created.json() and read["ETag"] == created["ETag"]
        changed = client.patch(created["Location"], {}, format="json", HTTP_IF_MATCH=read["ETag"])
        assert changed.status_code == 200 and changed.json() == read.json() and changed["ETag"] == read["ETag"]
        stored = LegacyCustomer.objects.get(pk=created.json()["customer_id"])
        assert (stored.customer_name, stored.customer_email) == ("New", "new@example.com")
        assert client.delete(created["Location"], HTTP_IF_MATCH=read["ETag"]).status_code == 204
