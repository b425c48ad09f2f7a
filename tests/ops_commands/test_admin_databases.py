"""Staff view of the databases: ``/api/v1/admin/databases/`` and ``.../slow-queries/``."""

from __future__ import annotations

import os

import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from core import aliases
from tests.factories import api_client
from tests.sagas.faults import unreachable

URL = "/api/v1/admin/databases/"
SLOW = "/api/v1/admin/databases/slow-queries/"
ALL = [aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.LEGACY, aliases.CACHE]


@pytest.mark.django_db(databases=ALL)
def test_staff_sees_every_alias_with_size_and_settings_but_never_a_password():
    connections[aliases.USERS].settings_dict["PASSWORD"] = "s3cret-never-shown"
    try:
        response = api_client(staff=True).get(URL)
    finally:
        connections[aliases.USERS].settings_dict["PASSWORD"] = settings.DATABASES[aliases.USERS].get("PASSWORD", "")
    assert response.status_code == 200
    assert "s3cret-never-shown" not in response.content.decode()
    assert "password" not in response.content.decode().lower()
    body = {d["alias"]: d for d in response.json()["databases"]}
    assert set(body) == set(settings.DATABASES)
    for alias, info in body.items():
        connection = connections[alias]
        assert info["vendor"] == connection.vendor and info["usable"] is True and info["error"] == ""
        assert isinstance(info["size_bytes"], int) and info["size_bytes"] > 0
        if connection.vendor == "sqlite":
            assert info["size_bytes"] == os.path.getsize(connection.settings_dict["NAME"])
        else:
            assert (info["host"], info["port"]) == (
                connection.settings_dict["HOST"],
                int(connection.settings_dict["PORT"]),
            )
            assert info["name"] == connection.settings_dict["NAME"]
        if "pool" in connection.settings_dict["OPTIONS"]:
            assert info["connection"]["pool"]["max_size"] == connection.settings_dict["OPTIONS"]["pool"]["max_size"]


@pytest.mark.real_engines
@pytest.mark.django_db(databases=ALL)
def test_sizes_come_from_each_engine():
    body = {d["alias"]: d for d in api_client(staff=True).get(URL).json()["databases"]}
    with connections[aliases.DEFAULT].cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        pg_size = cursor.fetchone()[0]
    with connections[aliases.LEGACY].cursor() as cursor:
        cursor.execute(
            "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = DATABASE()"
        )
        mysql_size = int(cursor.fetchone()[0])
    assert abs(body[aliases.DEFAULT]["size_bytes"] - pg_size) < 1024 * 1024
    assert body[aliases.LEGACY]["size_bytes"] == mysql_size


@pytest.mark.django_db(databases=ALL)
def test_a_database_that_is_down_is_listed_as_not_usable():
    with unreachable(aliases.ANALYTICS):
        response = api_client(staff=True).get(URL)
    assert response.status_code == 200
    info = next(d for d in response.json()["databases"] if d["alias"] == aliases.ANALYTICS)
    assert (info["usable"], info["size_bytes"]) == (False, None) and info["error"]


@pytest.mark.django_db(databases=[aliases.DEFAULT])
@pytest.mark.parametrize("path", [URL, SLOW])
def test_only_staff(path):
    assert api_client(staff=False).get(path).status_code == 403
    assert APIClient().get(path).status_code == 401


@pytest.mark.django_db(databases=[aliases.DEFAULT])
@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "alias=nope", "order=fastest"])
def test_bad_slow_query_parameters_are_400(query):
    assert api_client(staff=True).get(f"{SLOW}?{query}").status_code == 400


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.CACHE])
def test_slow_queries_not_available_on_sqlite():
    body = api_client(staff=True).get(f"{SLOW}?alias={aliases.CACHE}").json()
    assert body["available"] is False
    assert body["sources"] == [
        {
            "alias": aliases.CACHE,
            "vendor": "sqlite",
            "available": False,
            "queries": [],
            "detail": "not available: pg_stat_statements is PostgreSQL only (sqlite)",
        }
    ]


@pytest.mark.real_engines
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS])
def test_slow_queries_not_available_without_the_extension():
    with connections[aliases.USERS].cursor() as cursor:
        cursor.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
    body = api_client(staff=True).get(f"{SLOW}?alias={aliases.USERS}").json()
    assert body["available"] is False
    assert "extension is not installed" in body["sources"][0]["detail"]


@pytest.mark.real_engines
@pytest.mark.django_db(databases=[aliases.DEFAULT])
def test_slow_queries_from_pg_stat_statements():
    connection = connections[aliases.DEFAULT]
    with connection.cursor() as cursor:
        cursor.execute("SHOW shared_preload_libraries")
        preloaded = cursor.fetchone()[0]
        if "pg_stat_statements" not in preloaded:
            pytest.fail(
                "pg_stat_statements is not in shared_preload_libraries of the test PostgreSQL "
                f"({preloaded!r}): run scripts/enable-pg-stat-statements (as .ci/run does) and retry"
            )
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for _ in range(2):
            cursor.execute("SELECT pg_sleep(0.03) AS switchyard_slow_probe")
    response = api_client(staff=True).get(f"{SLOW}?alias={aliases.DEFAULT}&order=mean&limit=200")
    assert response.status_code == 200
    body = response.json()
    assert body["available"] is True and body["sources"][0]["available"] is True
    probe = [q for q in body["sources"][0]["queries"] if "switchyard_slow_probe" in q["query"]]
    assert len(probe) == 1
    assert probe[0]["calls"] >= 2 and probe[0]["mean_exec_time_ms"] >= 25
    assert probe[0]["total_exec_time_ms"] >= 2 * 25
    means = [q["mean_exec_time_ms"] for q in body["sources"][0]["queries"]]
    assert means == sorted(means, reverse=True)
