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


def _index_online(operation: Any, schema_editor: Any, app_label: str, state: Any, index: Any, add: bool) -> None:
    """Create or drop ``index`` ``CONCURRENTLY`` on the model as it is in ``state`` (PostgreSQL)."""
    model = state.apps.get_model(app_label, operation.model_name)
    if operation.allow_migrate_model(schema_editor.connection.alias, model):
        (schema_editor.add_index if add else schema_editor.remove_index)(model, index, concurrently=True)


class AddIndexOnline(AddIndex):
    """``AddIndex``, built ``CONCURRENTLY`` on PostgreSQL (the table stays writable while the index
    builds; the migration must be ``atomic = False``); a plain ``CREATE INDEX`` elsewhere. Unlike
    hand-written SQL it goes through the schema editor, so the index tablespace of the alias
    (:mod:`core.tablespaces`) and ``include`` (covering columns, PostgreSQL only) apply."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        _index_online(self, schema_editor, app_label, to_state, self.index, add=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        _index_online(self, schema_editor, app_label, from_state, self.index, add=False)


class RemoveIndexOnline(RemoveIndex):
    """``RemoveIndex``, dropped ``CONCURRENTLY`` on PostgreSQL (see :class:`AddIndexOnline`)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        _index_online(self, schema_editor, app_label, from_state, index, add=False)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        _index_online(self, schema_editor, app_label, to_state, index, add=True)
