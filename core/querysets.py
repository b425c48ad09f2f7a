"""Explicit database choice, the Django way (issue 12): ``Model.objects.primary()`` / ``.replica()``.

``primary()`` reads from the model's primary database (where the routers send its writes), for
code that must see the latest committed rows whatever the request's routing would say: checks
right before a write, sagas, the users fence. ``replica()`` reads where the routers send this
request's reads: the replica chosen for the request (one healthy replica per request and primary,
round-robin), the primary when none is healthy or when a write of this request (or a recent one,
through the pin cookie) pinned it. ``replica()`` asks Django's public ``router.db_for_read``, that
is :class:`routers.primary.PrimaryReplicaRouter` and its routing state, so a request's replica is
chosen once; ``primary()`` takes the primary from the same router table
(:func:`routers.primary.primary_for_label`) without ``db_for_write``, which would also note a write
and pin the request's later reads to the primary.

    User.objects.primary().filter(pk__in=ids)
    User.objects.replica().filter(username="ada")

``by_pk(pk)`` is the read of one object by its primary key that every detail endpoint does: one
statement, ``SELECT <every column> FROM <table> WHERE <pk> = %s``, built once per model and
database engine from the model's ``_meta`` and the backend's public ``ops.quote_name``, together
with the value converters the ORM's compiler would apply to those columns (the backend's
``ops.get_db_converters`` and each field's ``get_db_converters``, the same calls the compiler
makes). It runs on Django's cursor of the alias the routers pick (so the query is counted, timed
for ``Server-Timing`` and wrapped like any other) and builds the instance with the documented
``Model.from_db``. ``get(pk=...)`` compiles the statement again on every call, and
``QuerySet.raw()`` (what this used before) works out the model's column order and converters again
on every call: in process on the 2-core machine of the benchmarks (``bench`` data, users_db) a
user read cost 430 us of CPU through ``get()``, 157 us through ``raw()`` and 93 us through
``by_pk()`` (71 of them the cursor and ``from_db``; the rest the key's check and the routing).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, models, router

#: (model, vendor) -> (statement, attribute names, [(position, column, converters)], the key's range).
Plan = tuple[str, list[str], list[tuple[int, Any, list[Any]]], tuple[Any, Any]]
_plans: dict[tuple[type, str], Plan] = {}
_plans_lock = threading.Lock()


def _by_pk_plan(model: type[models.Model], alias: str) -> Plan:
    connection = connections[alias]
    key = (model, connection.vendor)
    plan = _plans.get(key)
    if plan is None:
        quote = connection.ops.quote_name
        meta = model._meta
        fields = meta.concrete_fields
        columns = ", ".join(quote(field.column) for field in fields)
        sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s"
        converters = []
        for position, field in enumerate(fields):
            column = field.get_col(meta.db_table)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if found:
                converters.append((position, column, found))
        key_range = (None, None)
        if isinstance(meta.pk, models.IntegerField):  # AutoField and BigAutoField too
            key_range = connection.ops.integer_field_range(meta.pk.get_internal_type())
        plan = (sql, [field.attname for field in fields], converters, key_range)
        with _plans_lock:
            _plans[key] = plan
    return plan


class RoutedQuerySet(models.QuerySet):
    def primary(self) -> Any:
        """This queryset on the model's primary database."""
        from routers.primary import primary_for_label

        return self.using(primary_for_label(self.model._meta.app_label))

    def replica(self) -> Any:
        """This queryset where the routers send this request's reads (a healthy replica or the primary)."""
        return self.using(router.db_for_read(self.model))

    def by_pk(self, pk: Any) -> Any:
        """The object whose primary key is ``pk``, or None (module doc). Only on an unfiltered
        queryset (``Model.objects``, ``.primary()``, ``.replica()``, ``.using()``)."""
        if self.query.where:
            raise TypeError("by_pk() reads by primary key alone: call it on an unfiltered queryset")
        alias = self.db
        sql, names, converters, (low, high) = _by_pk_plan(self.model, alias)
        try:
            value = self.model._meta.pk.to_python(pk)
        except (TypeError, ValueError, ValidationError):  # not a key of this model: nothing has it
            return None
        if isinstance(value, int) and ((low is not None and value < low) or (high is not None and value > high)):
            return None  # out of the column's range: nothing has it (as get() answers)
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(sql, [value])
            row = cursor.fetchone()
        if row is None:
            return None
        if converters:
            row = list(row)
            for position, column, functions in converters:
                for convert in functions:  # as the compiler applies them: (value, expression, connection)
                    row[position] = convert(row[position], column, connection)
        return self.model.from_db(alias, names, row)
