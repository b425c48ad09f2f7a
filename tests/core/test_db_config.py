"""DATABASES from the environment: per-engine options, replicas, the embedded default."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from psycopg import IsolationLevel

from core import aliases
from core.db_config import build_databases, replicas_of

PG = "postgres://app:not-a-real-password@db.example:5432/"


def test_nothing_set_means_sqlite_files_under_var(tmp_path):
    dbs = build_databases({}, tmp_path / "var")
    assert set(dbs) == set(aliases.PRIMARIES)
    for alias in aliases.PRIMARIES:
        assert dbs[alias]["ENGINE"] == "django.db.backends.sqlite3"
        assert dbs[alias]["NAME"] == str(tmp_path / "var" / aliases.EMBEDDED_FILE[alias])
        options = dbs[alias]["OPTIONS"]
        assert options["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in options["init_command"]
        assert "busy_timeout=5000" in options["init_command"]
        assert dbs[alias]["CONN_MAX_AGE"] == 60  # a file handle per thread, kept open
    assert (tmp_path / "var").is_dir()
    assert build_databases({"DB_CONN_MAX_AGE": "0"}, tmp_path)[aliases.CACHE]["CONN_MAX_AGE"] == 0


def test_postgresql_keeps_a_connection_per_thread_with_health_checks_and_read_committed_on_analytics(tmp_path):
    env = {"DATABASE_URL": PG + "main", "ANALYTICS_DATABASE_URL": PG + "events"}
    dbs = build_databases(env, tmp_path)
    main, events = dbs[aliases.DEFAULT], dbs[aliases.ANALYTICS]
    assert main["ENGINE"] == "core.db_backends.postgresql"
    assert "pool" not in main["OPTIONS"]
    assert main["CONN_HEALTH_CHECKS"] is True
    assert main["CONN_MAX_AGE"] == 60
    assert "isolation_level" not in main["OPTIONS"]
    assert events["OPTIONS"]["isolation_level"] == IsolationLevel.READ_COMMITTED
    assert main["PASSWORD"] == "not-a-real-password" and main["HOST"] == "db.example"


def test_djangos_pool_can_be_turned_on(tmp_path):
    env = {"DATABASE_URL": PG + "main", "DB_POOL": "1", "DB_POOL_MIN_SIZE": "2", "DB_POOL_MAX_SIZE": "11"}
    main = build_databases(env, tmp_path)[aliases.DEFAULT]
    assert main["OPTIONS"]["pool"]["min_size"] == 2
    assert main["OPTIONS"]["pool"]["max_size"] == 11
    assert main["CONN_HEALTH_CHECKS"] is True
    assert main["CONN_MAX_AGE"] == 0  # Django's pool refuses persistent connections


def test_mysql_gets_utf8mb4_and_strict_mode(tmp_path):
    dbs = build_databases({"LEGACY_DATABASE_URL": "mysql://root@127.0.0.1:3306/crm"}, tmp_path)
    legacy = dbs[aliases.LEGACY]
    assert legacy["ENGINE"] == "core.db_backends.mysql"
    assert legacy["OPTIONS"]["charset"] == "utf8mb4"
    assert legacy["OPTIONS"]["init_command"] == "SET sql_mode='STRICT_TRANS_TABLES'"
    assert "pool" not in legacy["OPTIONS"]
    assert legacy["TEST"]["CHARSET"] == "utf8mb4"


def test_replicas_from_comma_lists(tmp_path):
    env = {
        "DATABASE_URL": PG + "main",
        "DATABASE_REPLICA_URLS": f"{PG}r1, {PG}r2",
        "USERS_DATABASE_URL": PG + "users",
        "USERS_DATABASE_REPLICA_URLS": f"{PG}u1,",
    }
    dbs = build_databases(env, tmp_path)
    assert dbs["default_replica_1"]["NAME"] == "r1"
    assert dbs["default_replica_2"]["NAME"] == "r2"
    assert dbs["users_db_replica_1"]["NAME"] == "u1"
    assert replicas_of(dbs) == {
        aliases.DEFAULT: ("default_replica_1", "default_replica_2"),
        aliases.USERS: ("users_db_replica_1",),
    }
    assert "MIRROR" not in dbs["default_replica_1"]["TEST"]
    mirrored = build_databases({**env, "REPLICA_TEST_MIRROR": "1"}, tmp_path)
    assert mirrored["default_replica_1"]["TEST"]["MIRROR"] == aliases.DEFAULT


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_URL": "nosuchdb://x/y"},
        {"DATABASE_URL": PG + "main", "DB_POOL": "1", "DB_POOL_MAX_SIZE": "lots"},
        {"DATABASE_URL": PG + "main", "DB_CONN_MAX_AGE": "long"},
    ],
)
def test_bad_configuration_is_refused_with_a_reason(tmp_path, env):
    with pytest.raises(ImproperlyConfigured):
        build_databases(env, tmp_path)


def test_replica_alias_names():
    assert aliases.replica_alias(aliases.USERS, 3) == "users_db_replica_3"
    assert aliases.primary_of("users_db_replica_3") == aliases.USERS
    assert aliases.primary_of("users_db") == aliases.USERS
    assert aliases.replica_env(aliases.DEFAULT) == "DATABASE_REPLICA_URLS"
    assert aliases.replica_env(aliases.USERS) == "USERS_DATABASE_REPLICA_URLS"
