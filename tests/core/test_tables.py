"""Every table lives on exactly its own database and on no other."""

import pytest
from django.apps import apps
from django.db import connections

from core import aliases
from routers.primary import _db_for_model

PRIMARIES = [a for a in aliases.PRIMARIES]


def _tables(alias: str) -> set[str]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


@pytest.mark.django_db(databases="__all__")
@pytest.mark.parametrize("model", [m for m in apps.get_models()], ids=lambda m: m._meta.label)
def test_each_table_exists_on_exactly_its_own_database(model):
    home = _db_for_model(model)
    table = model._meta.db_table
    found_on = [alias for alias in PRIMARIES if table in _tables(alias)]
    assert found_on == [home], f"{table} found on {found_on}, expected only on {home}"


@pytest.mark.django_db(databases="__all__")
def test_cache_table_lives_on_cache_db():
    from django.conf import settings

    found_on = [alias for alias in PRIMARIES if settings.CACHE_TABLE in _tables(alias)]
    if settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
        assert found_on == [aliases.CACHE]
    else:
        assert found_on == []


@pytest.mark.django_db(databases=[aliases.LEGACY])
def test_legacy_database_holds_only_the_customers_table():
    """Migrations never create anything on legacy_db (not even django_migrations)."""
    assert _tables(aliases.LEGACY) == {"customers"}
