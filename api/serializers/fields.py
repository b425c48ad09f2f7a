"""Serializer fields shared by the resources."""

from __future__ import annotations

from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers
from rest_framework.fields import empty

from api.query_params import ascii_int

BIGINT_MAX = 2**63 - 1


class StrictCharField(serializers.CharField):
    """A JSON string, and only a string: ``0`` or ``true`` is a 400 (DRF would coerce them).

    ``max_length`` applies to the string as sent, before surrounding whitespace is trimmed, as the
    schema's ``maxLength`` says.
    """

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


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


def _check_json_strings(value: Any, path: str = "") -> None:
    """Reject text that the databases cannot store: NUL characters and lone surrogates."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            texts = [item]
        elif isinstance(item, dict):
            texts = list(item.keys())
            stack.extend((v, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            texts = []
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
        else:
            continue
        for text in texts:
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


class JSONObjectField(serializers.JSONField):
    """A JSON object (not an array or a scalar) whose text the databases can store."""

    default_error_messages = {"not_an_object": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        _check_json_strings(value)
        return value
