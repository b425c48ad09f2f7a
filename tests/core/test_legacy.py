"""The legacy ``customers`` table: utf8mb4 round trips, read-only by default, never migrated."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connections

from core import aliases
from core.legacy.models import LegacyCustomer
from core.legacy.schema import EXPECTED_COLUMNS, LegacySchemaMismatch, ensure_customers_table, existing_columns
from routers.primary import LegacyWriteForbidden
from routers.state import allow_legacy_writes
from tests.factories import make_customer

pytestmark = pytest.mark.django_db(databases=[aliases.LEGACY])

EMOJI_NAME = "Zoë 🚀 Ñandú 漢字 𝄞"


def _schema_snapshot() -> tuple:
    connection = connections[aliases.LEGACY]
    with connection.cursor() as cursor:
        tables = tuple(sorted(connection.introspection.table_names(cursor)))
        columns = tuple(
            (c.name, c.type_code, c.internal_size, c.null_ok)
            for c in connection.introspection.get_table_description(cursor, "customers")
        )
    return tables, columns


def test_utf8mb4_text_round_trips_through_the_legacy_table():
    customer = make_customer(customer_name=EMOJI_NAME, customer_email="zoë🚀@example.com")
    fetched = LegacyCustomer.objects.get(pk=customer.pk)
    assert fetched.customer_name == EMOJI_NAME
    assert fetched.customer_email == "zoë🚀@example.com"
    assert LegacyCustomer.objects.filter(customer_name__contains="🚀").count() == 1


@pytest.mark.real_engines
def test_legacy_connection_speaks_utf8mb4_in_strict_mode():
    with connections[aliases.LEGACY].cursor() as cursor:
        cursor.execute("SELECT @@character_set_connection, @@sql_mode")
        charset, sql_mode = cursor.fetchone()
    assert charset == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in sql_mode


@pytest.mark.real_engines
def test_strict_mode_refuses_too_long_values_instead_of_truncating():
    from django.db import DataError

    with pytest.raises(DataError):
        make_customer(customer_name="x" * 101)


def test_writes_are_refused_unless_allowed():
    with pytest.raises(LegacyWriteForbidden):
        LegacyCustomer.objects.create(
            customer_name="n", customer_email="e@example.com", created_date="2026-01-01T00:00:00Z"
        )
    customer = make_customer()
    customer.customer_name = "changed"
    with pytest.raises(LegacyWriteForbidden):
        customer.save()
    with pytest.raises(LegacyWriteForbidden):
        LegacyCustomer.objects.filter(pk=customer.pk).delete()
    with allow_legacy_writes():
        customer.save()
    assert LegacyCustomer.objects.get(pk=customer.pk).customer_name == "changed"


def test_migrate_never_touches_the_legacy_database():
    before = _schema_snapshot()
    call_command("migrate", database=aliases.LEGACY, interactive=False, verbosity=0)
    assert _schema_snapshot() == before
    assert "django_migrations" not in before[0]


def test_ensure_table_is_idempotent_and_refuses_a_different_customers_table():
    assert ensure_customers_table(aliases.LEGACY) is False  # already created for the suite
    assert sorted(existing_columns(aliases.LEGACY)) == sorted(EXPECTED_COLUMNS)
    connection = connections[aliases.LEGACY]
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE customers ADD COLUMN loyalty_points INTEGER NULL")
    try:
        with pytest.raises(LegacySchemaMismatch, match="Refusing"):
            ensure_customers_table(aliases.LEGACY)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE customers DROP COLUMN loyalty_points")
