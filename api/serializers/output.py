"""One cheap way to write every answer: :class:`OutputSerializer`.

DRF's ``Serializer`` deep-copies its declared fields for every instance it is made for (a single
read pays it per request) and, per row, walks a generator of fields, resolves each attribute
through ``source_attrs`` and converts every ``DateTimeField`` value through the current time zone.
Measured in process on this machine (issue 12, ``/work`` profile of ``GET /api/v1/users/?page_size=50``):
half of a list request went there.

An ``OutputSerializer`` keeps DRF's declaration (so the OpenAPI schema, ``OPTIONS`` and the
browsable API are unchanged) but writes an instance through a *plan* made once per class: one
(name, attribute, converter) triple per readable field, the fields bound once to a serializer of
their own. Only fields whose ``to_representation`` depends on nothing but the value are planned
(the types of :data:`PLAIN_FIELDS`, and nested ``OutputSerializer``s); a class with any other field
(a ``SerializerMethodField``, a hyperlink, anything reading ``context``) is written by DRF's own
``to_representation``, as before. What the plan writes is exactly what DRF writes:

- an attribute is read as DRF reads a one-step ``source`` (``instance[name]`` for a mapping, else
  ``getattr``); anything unusual (a missing key or attribute, a callable, a dotted ``source``)
  goes through the field's own ``get_attribute``, which raises ``SkipField`` where DRF would;
- ``None`` is written as ``null`` without its converter, as DRF does;
- a ``DateTimeField`` value already in UTC, with UTC the current time zone and ISO 8601 the
  format, is ``isoformat()`` with ``Z`` (what DRF's ``enforce_timezone`` and ``to_representation``
  give for it); any other value goes through the field's ``to_representation``.

``tests/api/test_output_serializers.py`` writes every output serializer of the API both ways (the
plan and DRF's own ``Serializer.to_representation``) over real rows and compares.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from django.conf import settings
from django.db.models.manager import BaseManager
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import SkipField
from rest_framework.settings import api_settings

#: Field types whose ``to_representation`` depends only on the value (no context, no parent).
PLAIN_FIELDS: tuple[type[serializers.Field], ...] = (
    serializers.CharField,  # EmailField, SlugField, RegexField, URLField are CharFields
    serializers.IntegerField,
    serializers.FloatField,
    serializers.BooleanField,
    serializers.JSONField,
    serializers.UUIDField,
    serializers.ReadOnlyField,
    serializers.ChoiceField,
)

#: (name, one-step source or None, the field's get_attribute, kind, converter, the type of value
#: the converter gives back unchanged or None); kinds below
Plan = tuple[tuple[str, str | None, Any, int, Any, type | None], ...]
PLAIN, DATETIME, NESTED = 0, 1, 2
_MISSING = object()

#: DRF's ``to_representation`` of these field classes gives back a value of exactly this type
#: unchanged (``str(value)``, ``int(value)``, ``float(value)``; a bool is looked up as itself), so
#: such a value is written without the call. Only where the field's class keeps DRF's method.
_UNCHANGED: dict[Any, type] = {
    serializers.CharField.to_representation: str,
    serializers.IntegerField.to_representation: int,
    serializers.FloatField.to_representation: float,
    serializers.BooleanField.to_representation: bool,
}


def _unchanged(field: serializers.Field) -> type | None:
    method = type(field).to_representation
    if method is serializers.BigIntegerField.to_representation:  # IntegerField's unless coerced
        return None if getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING) else int
    return _UNCHANGED.get(method)


def _step(field: serializers.Field) -> tuple[int, Any, type | None] | None:
    """How a field's value is written: (kind, converter, the type it leaves unchanged), or None
    when only DRF's path will do."""
    if isinstance(field, OutputSerializer):
        return NESTED, field, None
    if isinstance(field, serializers.DateTimeField):
        # DRF reads both as optional attributes of the field (set only when given to it).
        output = getattr(field, "format", api_settings.DATETIME_FORMAT)
        if output is None or not settings.USE_TZ or hasattr(field, "timezone"):
            return PLAIN, field.to_representation, None
        kind = DATETIME if output.lower() == ISO_8601 else PLAIN
        return kind, field.to_representation, None
    if isinstance(field, PLAIN_FIELDS):
        return PLAIN, field.to_representation, _unchanged(field)
    return None


def _in_utc() -> bool:
    """True when the current time zone writes a UTC datetime as DRF writes it with ``Z``."""
    zone = timezone.get_current_timezone()
    return zone is dt.UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC")


class OutputListSerializer(serializers.ListSerializer):
    """A page of an :class:`OutputSerializer`: the time zone looked up once per page, not per value."""

    def to_representation(self, data: Any) -> list[Any]:
        child: OutputSerializer = self.child  # type: ignore[assignment]
        if child.plan() is None:
            return super().to_representation(data)
        items = data.all() if isinstance(data, BaseManager) else data  # as DRF's ListSerializer
        utc = _in_utc()
        return [child.write(item, utc) for item in items]


# A read-only answer written through a plan made once per class (module doc). No docstring: the
# schema would show it as the description of every subclass without one of its own.
class OutputSerializer(serializers.Serializer):
    _plans: ClassVar[dict[type, Plan | None]] = {}
    _plans_lock: ClassVar[threading.Lock] = threading.Lock()

    class Meta:
        list_serializer_class = OutputListSerializer

    @classmethod
    def plan(cls) -> Plan | None:
        """The class's plan, or None when a field needs DRF's own path."""
        try:
            return OutputSerializer._plans[cls]
        except KeyError:
            pass
        with OutputSerializer._plans_lock:
            if cls not in OutputSerializer._plans:
                OutputSerializer._plans[cls] = cls.make_plan()
            return OutputSerializer._plans[cls]

    @classmethod
    def make_plan(cls) -> Plan | None:
        steps = []
        for field in cls().fields.values():  # bound once, to a serializer of their own
            if field.write_only:
                continue
            step = _step(field)
            if step is None:
                return None
            simple = field.source_attrs[0] if len(field.source_attrs) == 1 and field.source != "*" else None
            steps.append((field.field_name, simple, field.get_attribute, *step))
        return tuple(steps)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        if self.plan() is None:
            return self.finish(super().to_representation(instance))
        return self.write(instance, _in_utc())

    def finish(self, data: dict[str, Any]) -> dict[str, Any]:
        """What a subclass changes in every answer, whichever path wrote it (e.g. personal data nulled)."""
        return data

    def write(self, instance: Any, utc: bool) -> dict[str, Any]:
        """``instance`` through the plan (``utc``: the current time zone is UTC)."""
        mapping = type(instance) is dict or isinstance(instance, Mapping)
        data: dict[str, Any] = {}
        for name, simple, get_attribute, kind, convert, unchanged in self.plan():  # type: ignore[union-attr]
            value: Any = _MISSING
            if simple is not None:
                value = instance.get(simple, _MISSING) if mapping else getattr(instance, simple, _MISSING)
                if value.__class__ is unchanged:  # what the converter would give back as it is
                    data[name] = value
                    continue
            if value is _MISSING or callable(value):
                try:
                    value = get_attribute(instance)
                except SkipField:
                    continue
            if value is None:
                data[name] = None
            elif kind == PLAIN:
                data[name] = convert(value)
            elif kind == DATETIME:
                # isoformat() of a UTC value ends with +00:00, which DRF writes as Z.
                data[name] = (
                    value.isoformat()[:-6] + "Z"
                    if utc and isinstance(value, dt.datetime) and value.tzinfo is dt.UTC
                    else convert(value)
                )
            else:
                data[name] = (
                    convert.write(value, utc) if convert.plan() is not None else convert.to_representation(value)
                )
        return self.finish(data)
