"""Tablespaces per database alias: configuration, and placement on a real server."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.test import override_settings

from core import aliases, tablespaces
from core.analytics.models import AnalyticsEvent
from tests.factories import make_event, make_user

PG = {"ENGINE": "django.db.backends.postgresql", "OPTIONS": {}}
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "OPTIONS": {}}


def test_env_names_follow_the_url_variables() -> None:
    assert tablespaces.env_names(aliases.ANALYTICS) == (
        "ANALYTICS_DATABASE_DEFAULT_TABLESPACE",
        "ANALYTICS_DATABASE_DEFAULT_INDEX_TABLESPACE",
    )
    assert tablespaces.env_names(aliases.DEFAULT) == (
        "DATABASE_DEFAULT_TABLESPACE",
        "DATABASE_DEFAULT_INDEX_TABLESPACE",
    )


def test_from_env_per_alias_and_only_on_postgresql() -> None:
    databases = {aliases.DEFAULT: PG, aliases.USERS: PG, aliases.ANALYTICS: PG, aliases.CACHE: SQLITE}
    env = {
        "ANALYTICS_DATABASE_DEFAULT_TABLESPACE": "fast_disk",
        "ANALYTICS_DATABASE_DEFAULT_INDEX_TABLESPACE": "idx_disk",
        "USERS_DATABASE_DEFAULT_TABLESPACE": "users_disk",
        "CACHE_DATABASE_DEFAULT_TABLESPACE": "ignored_on_sqlite",
    }
    tables, indexes = tablespaces.from_env(env, databases)
    assert tables == {aliases.USERS: "users_disk", aliases.ANALYTICS: "fast_disk"}
    assert indexes == {aliases.ANALYTICS: "idx_disk"}


@pytest.mark.parametrize("bad", ["Fast", "a b", "x;DROP", "-c", "1abc", "a" * 64])
def test_tablespace_names_must_be_plain_identifiers(bad: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="ANALYTICS_DATABASE_DEFAULT_TABLESPACE"):
        tablespaces.from_env({"ANALYTICS_DATABASE_DEFAULT_TABLESPACE": bad}, {aliases.ANALYTICS: PG})


def test_apply_sets_default_tablespace_on_the_connection() -> None:
    databases = {aliases.ANALYTICS: {"OPTIONS": {"options": "-c statement_timeout=5000"}}, aliases.USERS: {}}
    tablespaces.apply(databases, {aliases.ANALYTICS: "fast_disk", aliases.USERS: "users_disk"})
    assert (
        databases[aliases.ANALYTICS]["OPTIONS"]["options"]
        == "-c statement_timeout=5000 -c default_tablespace=fast_disk"
    )
    assert databases[aliases.USERS]["OPTIONS"]["options"] == "-c default_tablespace=users_disk"


@override_settings(DATABASE_INDEX_TABLESPACES={aliases.ANALYTICS: "idx_disk"}, BASE_DEFAULT_INDEX_TABLESPACE="")
def test_index_tablespace_is_the_migrated_alias_only_while_migrate_runs() -> None:
    from django.db.models.signals import post_migrate, pre_migrate

    tablespaces._before_migrate(sender=None, using=aliases.ANALYTICS)
    assert settings.DEFAULT_INDEX_TABLESPACE == "idx_disk"
    tablespaces._after_migrate(sender=None, using=aliases.ANALYTICS)
    assert settings.DEFAULT_INDEX_TABLESPACE == ""
    tablespaces._before_migrate(sender=None, using=aliases.USERS)
    assert settings.DEFAULT_INDEX_TABLESPACE == ""
    # Both hooks are connected (CoreConfig.ready): disconnecting finds them; connect them again.
    assert pre_migrate.disconnect(dispatch_uid="switchyard-index-tablespace-before")
    assert post_migrate.disconnect(dispatch_uid="switchyard-index-tablespace-after")
    tablespaces.connect()


def placement(alias: str, *relations: str) -> dict[str, str]:
    """relation -> tablespace name (the database default shows as its own name)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname,
                   coalesce(t.spcname, (SELECT spcname FROM pg_tablespace d JOIN pg_database db
                                         ON db.dattablespace = d.oid WHERE db.datname = current_database()))
              FROM pg_class c LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
             WHERE c.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace
            """,
            [list(relations)],
        )
        return dict(cursor.fetchall())


def index_names(alias: str, table: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s ORDER BY 1", [table])
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.tablespaces
@pytest.mark.real_engines
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS], transaction=True)
def test_analytics_tables_and_indexes_live_on_their_own_tablespaces() -> None:
    table_ts = settings.DATABASE_TABLESPACES[aliases.ANALYTICS]
    index_ts = settings.DATABASE_INDEX_TABLESPACES[aliases.ANALYTICS]
    assert table_ts != index_ts
    indexes = index_names(aliases.ANALYTICS, "analytics_event")
    # The primary key, the timestamp index and the two composite ones.
    assert len(indexes) == 4 and {"analytics_type_ts", "analytics_user_ts_type"} <= set(indexes), indexes
    where = placement(aliases.ANALYTICS, "analytics_event", *indexes)
    assert where == {"analytics_event": table_ts, **{name: index_ts for name in indexes}}
    # And the tablespaces hold live data: write and read back.
    event = make_event(event_type="tablespace_check")
    assert AnalyticsEvent.objects.get(pk=event.pk).event_type == "tablespace_check"


@pytest.mark.tablespaces
@pytest.mark.real_engines
@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS], transaction=True)
def test_other_aliases_keep_their_own_placement() -> None:
    users_ts = settings.DATABASE_TABLESPACES.get(aliases.USERS)
    users_indexes = index_names(aliases.USERS, "users_user")
    where = placement(aliases.USERS, "users_user", *users_indexes)
    expected_users = users_ts or "pg_default"
    # No index tablespace for users_db: its indexes follow default_tablespace, raw-SQL ones included.
    assert where == {name: expected_users for name in ["users_user", *users_indexes]}
    assert "users_user_email_lower" in users_indexes
    assert placement(aliases.DEFAULT, "blog_post") == {"blog_post": "pg_default"}
    make_user()
