"""``manage.py migrate_all`` on empty real databases leaves every table on exactly its own database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import MySQLdb
import psycopg
import pytest
from django.apps import apps
from django.conf import settings

from core import aliases
from routers.primary import _db_for_model

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.real_engines


def _pg_admin() -> psycopg.Connection:
    cfg = settings.DATABASES[aliases.DEFAULT]
    return psycopg.connect(
        host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"], dbname="postgres", autocommit=True
    )


def _my_admin():  # type: ignore[no-untyped-def]
    cfg = settings.DATABASES[aliases.LEGACY]
    return MySQLdb.connect(
        host=cfg["HOST"],
        port=int(cfg["PORT"] or 3306),
        user=cfg["USER"],
        passwd=cfg["PASSWORD"] or "",
        charset="utf8mb4",
    )


@pytest.fixture
def empty_databases(tmp_path):
    suffix = uuid.uuid4().hex[:8]
    names = {alias: f"sy_migrate_{alias}_{suffix}" for alias in (aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS)}
    legacy = f"sy_migrate_legacy_{suffix}"
    with _pg_admin() as admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    conn = _my_admin()
    conn.cursor().execute(f"CREATE DATABASE `{legacy}` CHARACTER SET utf8mb4")
    pg = settings.DATABASES[aliases.DEFAULT]
    base = f"postgres://{pg['USER']}@{pg['HOST']}:{pg['PORT'] or 5432}/"
    env = {
        **os.environ,
        "DATABASE_URL": base + names[aliases.DEFAULT],
        "USERS_DATABASE_URL": base + names[aliases.USERS],
        "ANALYTICS_DATABASE_URL": base + names[aliases.ANALYTICS],
        "LEGACY_DATABASE_URL": f"mysql://root@127.0.0.1:3306/{legacy}",
        "CACHE_DATABASE_URL": f"sqlite:///{tmp_path / 'cache.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    for key in [k for k in env if k.endswith("_REPLICA_URLS")]:
        env.pop(key)
    yield env, names, legacy, tmp_path / "cache.sqlite3"
    with _pg_admin() as admin:
        for name in names.values():
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{legacy}`")
    conn.close()


def _pg_tables(name: str) -> set[str]:
    pg = settings.DATABASES[aliases.DEFAULT]
    with psycopg.connect(host=pg["HOST"], port=pg["PORT"] or 5432, user=pg["USER"], dbname=name) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def _run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_migrate_all_puts_every_table_on_its_own_database_only(empty_databases):
    import sqlite3

    env, names, legacy, cache_file = empty_databases
    result = _run(env, "migrate_all")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(" ")[0].rstrip(":") for line in lines] == [
        "legacy_db",
        "default",
        "users_db",
        "analytics_db",
        "cache_db",
    ]
    assert "skipped" in lines[0]

    found = {alias: _pg_tables(name) for alias, name in names.items()}
    found[aliases.CACHE] = {
        r[0]
        for r in sqlite3.connect(cache_file).execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    conn = _my_admin()
    cur = conn.cursor()
    cur.execute(f"SHOW TABLES FROM `{legacy}`")
    found[aliases.LEGACY] = {r[0] for r in cur.fetchall()}
    conn.close()

    assert found[aliases.LEGACY] == set(), "nothing may be created on the legacy database"
    for model in apps.get_models():
        if not model._meta.managed:
            continue
        table, home = model._meta.db_table, _db_for_model(model)
        holders = sorted(alias for alias, tables in found.items() if table in tables)
        assert holders == [home], f"{table}: on {holders}, expected [{home}]"
    assert settings.CACHE_TABLE in found[aliases.CACHE]


def test_migrate_all_can_be_narrowed_and_refuses_unknown_aliases(empty_databases):
    env, names, _legacy, _cache_file = empty_databases
    result = _run(env, "migrate_all", "--database", aliases.USERS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[0].startswith("users_db (postgresql): migrated")
    assert "users_user" in _pg_tables(names[aliases.USERS])
    assert _pg_tables(names[aliases.DEFAULT]) == set()

    result = _run(env, "migrate_all", "--database", aliases.DEFAULT, "--app", "blog")
    assert result.returncode == 0, result.stderr
    assert {"blog_post", "blog_userprofile"} <= _pg_tables(names[aliases.DEFAULT])
    assert "auth_user" not in _pg_tables(names[aliases.DEFAULT])

    for bad in (aliases.LEGACY, "users_db_replica_1", "nope"):
        result = _run(env, "migrate_all", "--database", bad)
        assert result.returncode != 0
        assert "not a migratable primary alias" in result.stderr


def test_email_index_is_built_concurrently_on_postgresql(empty_databases):
    env, names, _, _ = empty_databases
    assert _run(env, "migrate_all", "--database", aliases.USERS).returncode == 0
    pg = settings.DATABASES[aliases.DEFAULT]
    with psycopg.connect(
        host=pg["HOST"], port=pg["PORT"] or 5432, user=pg["USER"], dbname=names[aliases.USERS]
    ) as conn:
        row = conn.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'users_user_email_lower'").fetchone()
    assert row is not None and "lower((email)::text)" in row[0]


def test_email_index_migration_uses_concurrently_on_postgresql_only(empty_databases):
    env, _, _, _ = empty_databases
    pg = _run(env, "sqlmigrate", "users", "0002", "--database", aliases.USERS)
    assert pg.returncode == 0, pg.stderr
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_user_email_lower" in pg.stdout
    assert "BEGIN" not in pg.stdout  # non-atomic: CONCURRENTLY cannot run in a transaction
    sqlite_env = {**env, "USERS_DATABASE_URL": f"sqlite:///{env['CACHE_DATABASE_URL'][10:]}.users"}
    lite = _run(sqlite_env, "sqlmigrate", "users", "0002", "--database", aliases.USERS)
    assert lite.returncode == 0, lite.stderr
    assert "CREATE INDEX IF NOT EXISTS users_user_email_lower" in lite.stdout
    assert "CONCURRENTLY" not in lite.stdout


def test_the_covering_events_index_migrates_forwards_and_back(empty_databases):
    """analytics 0002 builds the covering index before dropping the old one (both online on
    PostgreSQL), and unapplies cleanly."""
    env, names, _, _ = empty_databases
    pg = settings.DATABASES[aliases.DEFAULT]

    def indexes() -> dict[str, str]:
        with psycopg.connect(
            host=pg["HOST"], port=pg["PORT"] or 5432, user=pg["USER"], dbname=names[aliases.ANALYTICS]
        ) as conn:
            rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_event'")
            return dict(rows.fetchall())

    assert _run(env, "migrate_all", "--database", aliases.ANALYTICS).returncode == 0
    found = indexes()
    assert "analytics_user_ts" not in found
    assert "INCLUDE (event_type)" in found["analytics_user_ts_type"].replace('"', "")
    back = _run(env, "migrate", "analytics", "0001", "--database", aliases.ANALYTICS)
    assert back.returncode == 0, back.stderr
    found = indexes()
    assert "analytics_user_ts" in found and "analytics_user_ts_type" not in found
    again = _run(env, "migrate", "analytics", "--database", aliases.ANALYTICS)
    assert again.returncode == 0, again.stderr
    assert set(indexes()) >= {"analytics_user_ts_type", "analytics_type_ts"}


def test_the_post_search_column_and_index_migrate_forwards_and_back(empty_databases):
    """blog 0002: a generated tsvector column and its GIN index (built CONCURRENTLY) on
    PostgreSQL, kept current by the server on every write; unapplied cleanly; nothing on SQLite."""
    env, names, _, _ = empty_databases
    pg = settings.DATABASES[aliases.DEFAULT]

    def connect() -> psycopg.Connection:
        return psycopg.connect(host=pg["HOST"], port=pg["PORT"] or 5432, user=pg["USER"], dbname=names[aliases.DEFAULT])

    def state() -> tuple[set[str], dict[str, str]]:
        with connect() as conn:
            columns = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'blog_post'")
            indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'blog_post'")
            return {r[0] for r in columns.fetchall()}, dict(indexes.fetchall())

    assert _run(env, "migrate_all", "--database", aliases.DEFAULT).returncode == 0
    columns, indexes = state()
    assert "search_vector" in columns and "USING gin (search_vector)" in indexes["blog_post_search"]
    with connect() as conn:
        conn.execute(
            "INSERT INTO blog_post (title, content, author_id, created_at, updated_at) "
            "VALUES ('Sailing boats', 'In the harbour', 1, now(), now())"
        )
        conn.execute("UPDATE blog_post SET content = 'On the river'")
        assert conn.execute("SELECT search_vector::text FROM blog_post").fetchone()[0] == "'boat':2 'river':5 'sail':1"
    plan = _run(env, "sqlmigrate", "blog", "0002", "--database", aliases.DEFAULT)
    assert plan.returncode == 0 and "BEGIN" not in plan.stdout  # non-atomic: CONCURRENTLY
    back = _run(env, "migrate", "blog", "0001", "--database", aliases.DEFAULT)
    assert back.returncode == 0, back.stderr
    columns, indexes = state()
    assert "search_vector" not in columns and "blog_post_search" not in indexes
    lite_env = {**env, "DATABASE_URL": f"sqlite:///{env['CACHE_DATABASE_URL'][10:]}.default"}
    lite = _run(lite_env, "sqlmigrate", "blog", "0002", "--database", aliases.DEFAULT)
    assert lite.returncode == 0, lite.stderr
    assert "tsvector" not in lite.stdout and "using gin" not in lite.stdout.lower()
