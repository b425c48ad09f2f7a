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
database engine from the model's ``_meta`` and the backend's public ``ops.quote_name``, run through
Django's public ``QuerySet.raw()`` (which routes it, converts the values as the ORM does and builds
the instance with ``Model.from_db``). ``get(pk=...)`` compiles the same statement again on every
call: in process on the 2-core machine of the benchmarks (``bench`` data, users_db) a user read
cost 430 us of CPU through ``get()`` and 197 us through ``by_pk()`` (88 us straight through a
cursor, without the ORM's value conversion).
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, models, router

_statements: dict[tuple[type, str], str] = {}
_statements_lock = threading.Lock()


def _by_pk_sql(model: type[models.Model], alias: str) -> str:
    connection = connections[alias]
    key = (model, connection.vendor)
    sql = _statements.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        meta = model._meta
        columns = ", ".join(quote(field.column) for field in meta.concrete_fields)
        sql = f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s"
        with _statements_lock:
            _statements[key] = sql
    return sql


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
        key = self.model._meta.pk
        try:
            value = key.to_python(pk)
        except (TypeError, ValueError, ValidationError):  # not a key of this model: nothing has it
            return None
        if isinstance(value, int):  # out of the column's range: nothing has it (as get() answers)
            low, high = connections[alias].ops.integer_field_range(key.get_internal_type())
            if (low is not None and value < low) or (high is not None and value > high):
                return None
        for row in self.raw(_by_pk_sql(self.model, alias), [value], using=alias):
            return row
        return None
