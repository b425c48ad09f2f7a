"""Every router decision, table-driven over every installed model (no replicas configured)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import router
from django.test import override_settings

from core import aliases
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post, UserProfile
from core.cache.models import CacheEntry
from core.legacy.models import LegacyCustomer
from core.users.models import User
from routers import state
from routers.primary import LegacyWriteForbidden, PrimaryReplicaRouter, primary_for_label

# Written out by hand (not derived from the router) so that a wrong router fails these tests.
EXPECTED_HOME = {
    "users": aliases.USERS,
    "blog": aliases.DEFAULT,
    "analytics": aliases.ANALYTICS,
    "legacy": aliases.LEGACY,
    "cache": aliases.CACHE,
    "auth": aliases.DEFAULT,
    "contenttypes": aliases.DEFAULT,
    "sessions": aliases.DEFAULT,
    "admin": aliases.DEFAULT,
    "authtoken": aliases.DEFAULT,
    "tokens": aliases.DEFAULT,  # API tokens (hashed), issue 10
    "core": aliases.DEFAULT,
}
ALL_MODELS = list(apps.get_models())
WRITABLE_MODELS = [m for m in ALL_MODELS if m._meta.app_label != "legacy"]


def test_every_installed_app_label_has_an_expected_home():
    labels = {m._meta.app_label for m in ALL_MODELS}
    assert labels <= set(EXPECTED_HOME), f"add these app labels to the table: {labels - set(EXPECTED_HOME)}"


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m._meta.label)
def test_reads_go_to_the_models_home(model):
    assert router.db_for_read(model) == EXPECTED_HOME[model._meta.app_label]


@pytest.mark.parametrize("model", WRITABLE_MODELS, ids=lambda m: m._meta.label)
def test_writes_go_to_the_models_home(model):
    assert router.db_for_write(model) == EXPECTED_HOME[model._meta.app_label]


@pytest.mark.parametrize("model", ALL_MODELS, ids=lambda m: m._meta.label)
@pytest.mark.parametrize("alias", aliases.PRIMARIES)
def test_migrate_only_on_home_and_never_on_legacy(model, alias):
    home = EXPECTED_HOME[model._meta.app_label]
    expected = alias == home and alias != aliases.LEGACY
    assert router.allow_migrate_model(alias, model) is expected


@pytest.mark.parametrize("alias", aliases.PRIMARIES)
def test_migrations_never_run_on_a_replica_alias(alias):
    for model in ALL_MODELS:
        assert PrimaryReplicaRouter().allow_migrate(f"{alias}_replica_1", model._meta.app_label) is False


def test_unknown_app_label_goes_to_default():
    assert primary_for_label("no_such_app") == aliases.DEFAULT
    assert PrimaryReplicaRouter().allow_migrate(aliases.DEFAULT, "no_such_app") is True
    assert PrimaryReplicaRouter().allow_migrate(aliases.USERS, "no_such_app") is False


def test_database_cache_table_routes_to_cache_db():
    assert primary_for_label("django_cache") == aliases.CACHE


def test_legacy_writes_are_refused_by_default():
    with pytest.raises(LegacyWriteForbidden):
        router.db_for_write(LegacyCustomer)


def test_legacy_writes_allowed_by_setting_or_context():
    with override_settings(LEGACY_ALLOW_WRITES=True):
        assert router.db_for_write(LegacyCustomer) == aliases.LEGACY
    with state.allow_legacy_writes():
        assert router.db_for_write(LegacyCustomer) == aliases.LEGACY
    with pytest.raises(LegacyWriteForbidden):
        router.db_for_write(LegacyCustomer)


def _saved(model, alias, **fields):
    obj = model(**fields)
    obj._state.db = alias
    return obj


RELATION_CASES = [
    (_saved(Post, aliases.DEFAULT), _saved(UserProfile, aliases.DEFAULT), True),
    (_saved(Post, aliases.DEFAULT), _saved(User, aliases.USERS), False),
    (_saved(User, aliases.USERS), _saved(AnalyticsEvent, aliases.ANALYTICS), False),
    (_saved(CacheEntry, aliases.CACHE), _saved(Post, aliases.DEFAULT), False),
    (_saved(LegacyCustomer, aliases.LEGACY), _saved(User, aliases.USERS), False),
    # a primary and its replica count as one database
    (_saved(User, aliases.USERS), _saved(User, "users_db_replica_1"), True),
    (_saved(Post, "default_replica_2"), _saved(UserProfile, aliases.DEFAULT), True),
    (_saved(Post, "default_replica_1"), _saved(User, "users_db_replica_1"), False),
]


@pytest.mark.parametrize("obj1,obj2,expected", RELATION_CASES)
def test_relations_only_within_one_database(obj1, obj2, expected):
    assert router.allow_relation(obj1, obj2) is expected
    assert router.allow_relation(obj2, obj1) is expected


def test_a_write_pins_reads_of_that_primary_only():
    with state.isolated() as current:
        router.db_for_write(Post)
        assert current.written == {aliases.DEFAULT}
        assert state.is_pinned(aliases.DEFAULT)
        assert not state.is_pinned(aliases.USERS)


def test_use_primary_works_as_context_manager_and_decorator():
    assert not state.is_pinned(aliases.USERS)
    with state.use_primary():
        assert state.is_pinned(aliases.USERS)
        with state.use_primary():
            assert state.is_pinned(aliases.ANALYTICS)
        assert state.is_pinned(aliases.USERS)
    assert not state.is_pinned(aliases.USERS)

    @state.use_primary()
    def inside() -> bool:
        return state.is_pinned(aliases.USERS)

    assert inside() is True
    assert not state.is_pinned(aliases.USERS)
