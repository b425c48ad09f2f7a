"""Migration operations that pick their SQL by database vendor."""

from __future__ import annotations

from typing import Any

from django.db.migrations.operations.models import AddIndex, RemoveIndex
from django.db.migrations.operations.special import RunSQL


class VendorRunSQL(RunSQL):
    """``RunSQL`` with one statement per vendor (``postgresql``, ``mysql``, ``sqlite``, ``*``).

    It still asks the routers (``allow_migrate`` with this operation's hints) before running, so a
    migration runs only on the alias its app lives on.
    """

    def __init__(self, sql: dict[str, str], reverse_sql: dict[str, str] | None = None, **kwargs: Any) -> None:
        self.vendor_sql = sql
        self.vendor_reverse_sql = reverse_sql or {}
        super().__init__(sql=RunSQL.noop, reverse_sql=RunSQL.noop, **kwargs)

    def deconstruct(self):  # type: ignore[no-untyped-def]
        name, args, kwargs = super().deconstruct()
        kwargs["sql"] = self.vendor_sql
        if self.vendor_reverse_sql:
            kwargs["reverse_sql"] = self.vendor_reverse_sql
        else:
            kwargs.pop("reverse_sql", None)
        return name, args, kwargs

    @staticmethod
    def _pick(table: dict[str, str], vendor: str) -> str:
        return table.get(vendor, table.get("*", ""))

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        from django.db import router

        if router.allow_migrate(schema_editor.connection.alias, app_label, **self.hints):
            sql = self._pick(self.vendor_sql, schema_editor.connection.vendor)
            if sql:
                self._run_sql(schema_editor, sql)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        from django.db import router

        if router.allow_migrate(schema_editor.connection.alias, app_label, **self.hints):
            sql = self._pick(self.vendor_reverse_sql, schema_editor.connection.vendor)
            if sql:
                self._run_sql(schema_editor, sql)

    def describe(self) -> str:
        return "Raw SQL chosen by database vendor"


class AddIndexOnline(AddIndex):
    """``AddIndex``, built ``CONCURRENTLY`` on PostgreSQL (the table stays writable while the index
    builds; the migration must be ``atomic = False``); a plain ``CREATE INDEX`` elsewhere. Unlike
    hand-written SQL it goes through the schema editor, so the index tablespace of the alias
    (:mod:`core.tablespaces`) and ``include`` (covering columns, PostgreSQL only) apply."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class RemoveIndexOnline(RemoveIndex):
    """``RemoveIndex``, dropped ``CONCURRENTLY`` on PostgreSQL (see :class:`AddIndexOnline`)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.remove_index(model, index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.add_index(model, index, concurrently=True)
