"""Serializer fields shared by the resources."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from django.conf import settings
from django.core.validators import MaxLengthValidator
from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.fields import empty

from api.query_params import ascii_int
from api.renderers import LINE_SEPARATOR, PARAGRAPH_SEPARATOR, dumps

BIGINT_MAX = 2**63 - 1


class Limit:
    """A size bound named by a setting (``Limit("POST_CONTENT_MAX_CHARS")``), read each time it is
    used: when a value is validated, when the schema or ``OPTIONS`` describes the field. So the
    configured value holds everywhere and nothing reads settings at import time."""

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def __call__(self) -> int:
        return int(getattr(settings, self.setting))

    def __repr__(self) -> str:
        return f"Limit({self.setting!r})"

    def __deepcopy__(self, memo: dict[int, Any]) -> Limit:
        return self  # immutable: DRF deep-copies a serializer's fields for every instance


class BoundedText:
    """A JSON string, and only a string: ``0`` or ``true`` is a 400 (DRF would coerce them).

    ``max_length`` (an ``int`` or a :class:`Limit`) applies to the string as sent, before
    surrounding whitespace is trimmed, as the schema's ``maxLength`` says; a :class:`Limit` is read
    when the field is used (validation, the schema, ``OPTIONS``). Mixed in before a DRF field (its
    ``fail`` and ``to_internal_value`` are the field's: hence the ignores below).
    """

    limit: Limit | None = None
    fixed_max_length: int | None = None

    def __init__(self, *args: Any, max_length: int | Limit | None = None, **kwargs: Any) -> None:
        if isinstance(max_length, Limit):
            super().__init__(*args, **kwargs)
            self.limit = max_length
            message = "Ensure this field has no more than %(limit_value)d characters."
            self.validators.append(MaxLengthValidator(max_length, message=message))
        else:
            super().__init__(*args, max_length=max_length, **kwargs)

    @property
    def max_length(self) -> int | None:
        return self.limit() if self.limit is not None else self.fixed_max_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        self.fixed_max_length = value

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        limit = self.max_length
        if limit is not None and len(data) > limit:
            self.fail("max_length", max_length=limit)  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(BoundedText, serializers.CharField):
    pass


class StrictEmailField(BoundedText, serializers.EmailField):
    pass


class StrictURLField(BoundedText, serializers.URLField):
    pass


TIMEZONE_REQUIRED = "Include a timezone, e.g. 2026-11-01T00:00:00Z."


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time that carries a timezone (`2026-11-25T10:00:00Z`): a naive one is a 400
    instead of being taken as UTC."""

    default_error_messages = {"timezone_required": TIMEZONE_REQUIRED}

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is None:
                self.fail("timezone_required")
        return super().to_internal_value(value)


class QueryIntegerField(serializers.IntegerField):
    """An integer of a query string: ASCII digits only (``api.query_params.ascii_int``).

    DRF's IntegerField reads ``int(str(value))`` and so takes ``+2``, `` 2``, ``1_0``, ``2.0`` and
    digits of any script (``２``, ``٣``); here each of those is a 400 (code ``invalid``), and so is
    an empty value (``?days=``), which DRF would take for an absent one."""

    def get_value(self, dictionary: Any) -> Any:
        value = super().get_value(dictionary)
        if value is empty and self.field_name in dictionary:
            return dictionary[self.field_name]
        return value

    def to_internal_value(self, data: Any) -> int:
        number = ascii_int(data) if isinstance(data, str) else None
        if number is None:
            self.fail("invalid")
        return super().to_internal_value(number)


class IdField(serializers.IntegerField):
    """A reference to a row by id: an integer from 1 to 2**63-1 (a signed 64-bit column).

    In a JSON body (``strict``) only a JSON integer is accepted; in a query string (``strict=False``)
    ASCII digits only, as :class:`QueryIntegerField` reads them. Anything else (a float like
    ``1e400``, a boolean, ``"２"``, ``"+2"``, a number beyond bigint) is a 400.
    """

    def __init__(self, *, strict: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        self.strict = strict
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, (bool, float)) or (self.strict and not isinstance(data, int)):
            self.fail("invalid")
        if isinstance(data, str):
            number = ascii_int(data)
            if number is None:
                self.fail("invalid")
            data = number
        try:
            return super().to_internal_value(data)
        except OverflowError:
            self.fail("max_value", max_value=self.max_value)


def _text_problem(text: str, where: str) -> None:
    """Refuse text that the databases cannot store: NUL characters and lone surrogates."""
    if "\x00" in text:
        raise serializers.ValidationError(
            f"Null characters are not allowed (at {where or 'top level'}).", code="null_characters_not_allowed"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError(
            f"Surrogate characters are not allowed (at {where or 'top level'}).",
            code="surrogate_characters_not_allowed",
        ) from None


#: Floats from here up are written by PostgreSQL's jsonb as every digit of their integer value
#: (``1e300`` comes back as 301 digits); below it their text is kept.
_PLAIN_DIGITS_FROM = 1e16


def _walk(value: Any, max_depth: int | None) -> int:
    """Check every string and key of ``value`` (:func:`_text_problem`) and its nesting depth
    (``value`` itself is level 1, each object or array inside one more); return the bytes that
    large floats gain when read back from PostgreSQL (see :func:`json_size`)."""
    grown = 0
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        item, depth, where = stack.pop()
        if max_depth is not None and depth > max_depth:
            raise serializers.ValidationError(
                f"Ensure this object is nested no more than {max_depth} levels deep (at {where}).", code="max_depth"
            )
        pairs: Any = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(key, str):
                _text_problem(key, where)
            if isinstance(child, str):
                _text_problem(child, f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]")
            elif isinstance(child, (dict, list)):
                stack.append((child, depth + 1, f"{where}.{key}" if isinstance(key, str) else f"{where}[{key}]"))
            elif type(child) is float and abs(child) >= _PLAIN_DIGITS_FROM and math.isfinite(child):
                grown += max(0, len(str(int(child))) - len(orjson.dumps(child)))
    return grown


def json_size(value: Any, grown: int = 0) -> int:
    """The bytes of ``value`` as the API answers it (compact UTF-8 JSON, U+2028/U+2029 escaped:
    ``api.renderers``), plus ``grown``: what its large floats gain when PostgreSQL gives them back
    as plain digits (from :func:`_walk`). An upper bound of what any read of it writes."""
    try:
        body = dumps(value)
    except TypeError:  # an integer beyond 64 bits: written by DRF's encoder, as the renderer does
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return len(body) + 3 * (body.count(LINE_SEPARATOR) + body.count(PARAGRAPH_SEPARATOR)) + grown


def json_object_size(
    value: dict[str, Any],
    *,
    max_properties: int | None = None,
    max_depth: int | None = None,
    max_bytes: int | None = None,
) -> int:
    """The size of a JSON object (:func:`json_size`) after checking it, cheapest check first: its
    number of keys, its strings (:func:`_text_problem`) and depth, its size. A value over a bound
    is a ``ValidationError`` with the code ``max_properties``, ``max_depth`` or ``max_bytes``."""
    if max_properties is not None and len(value) > max_properties:
        raise serializers.ValidationError(
            f"Ensure this object has no more than {max_properties} keys (it has {len(value)}).", code="max_properties"
        )
    size = json_size(value, _walk(value, max_depth))
    if max_bytes is not None and size > max_bytes:
        raise serializers.ValidationError(
            f"Ensure this object is no more than {max_bytes} bytes as JSON (it is {size}).", code="max_bytes"
        )
    return size


class JSONObjectField(serializers.JSONField):
    """A JSON object (not an array or a scalar) whose text the databases can store, bounded by
    :class:`Limit` s: its keys (``maxProperties``), its nesting depth and its size in bytes as the
    API writes it back (:func:`json_object_size`; the schema's ``x-max-depth``, ``x-max-bytes``)."""

    default_error_messages = {"not_an_object": "Must be a JSON object."}

    def __init__(
        self,
        *,
        max_properties: Limit | None = None,
        max_depth: Limit | None = None,
        max_bytes: Limit | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_properties, self.max_depth, self.max_bytes = max_properties, max_depth, max_bytes

    def bounds(self) -> dict[str, int | None]:
        """The configured bounds, by keyword of :func:`json_object_size`."""
        return {
            "max_properties": self.max_properties() if self.max_properties else None,
            "max_depth": self.max_depth() if self.max_depth else None,
            "max_bytes": self.max_bytes() if self.max_bytes else None,
        }

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        json_object_size(value, **self.bounds())
        return value
