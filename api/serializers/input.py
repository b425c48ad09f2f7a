"""The base of every request body's serializer: :class:`InputSerializer`, which refuses unknown fields.

DRF's ``Serializer`` reads the fields it declares and silently drops every other key, so a typo
(``{"body": ...}`` for ``content``) is stored as the field's default and answered with a 201. An
``InputSerializer`` refuses every key of the body that is not one of its writable fields, each as an
``errors[]`` entry of its own with the code ``unknown_field``, named by its path as every other
field error is (``pad``, ``profile.pad``, ``events[3].pad``): nested serializers and ``many=True``
lists of them check their own objects, since DRF validates each through its ``to_internal_value``.
The refusals come together with the errors of the declared fields, in one answer.

A field the answer has but the request does not take (``id``, ``created_at``, a post's ``author``)
is no field of the request: sent in a body, it is refused the same way. The values of free-form
JSON fields (an event's ``data``) are not serializers, and their keys are not checked.

A body that is not a JSON object where one is expected is DRF's own 400 (code ``invalid``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

UNKNOWN_FIELD = "unknown_field"
#: Unknown keys named one by one per object; beyond them, one entry counts the rest, so that an
#: answer stays within a small multiple of the body.
MAX_NAMED = 50
#: How much of an unknown key an answer repeats.
MAX_NAME_LENGTH = 100


def _shown(key: Any) -> str:
    name = str(key)
    return name if len(name) <= MAX_NAME_LENGTH else name[:MAX_NAME_LENGTH] + "..."


# A request body's serializer: the keys it does not declare as writable fields are a 400. (No
# docstring: drf-spectacular would make it the description of every request component.)
class InputSerializer(serializers.Serializer):
    def unknown_field_errors(self, data: Mapping[Any, Any]) -> dict[str, list[ErrorDetail]]:
        """One error per key of ``data`` that is not a writable field (at most :data:`MAX_NAMED`,
        then one that counts the others)."""
        accepted = [name for name, field in self.fields.items() if not field.read_only]
        allowed = set(accepted)
        unknown = [key for key in data if key not in allowed]
        if not unknown:
            return {}
        message = "Unknown field; this object takes " + (", ".join(accepted) or "no fields") + "."
        errors = {_shown(key): [ErrorDetail(message, code=UNKNOWN_FIELD)] for key in unknown[:MAX_NAMED]}
        if len(unknown) > MAX_NAMED:
            rest = len(unknown) - MAX_NAMED
            errors[api_settings.NON_FIELD_ERRORS_KEY] = [
                ErrorDetail(f"{rest} more unknown field{'s' if rest > 1 else ''} not named here.", code=UNKNOWN_FIELD)
            ]
        return errors

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)  # DRF's 400: an object is expected
        unknown = self.unknown_field_errors(data)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not unknown or not isinstance(exc.detail, dict):
                raise
            errors = dict(exc.detail)
            for name, items in unknown.items():
                known = errors.get(name)
                errors[name] = [*known, *items] if isinstance(known, list) else items
            raise serializers.ValidationError(errors) from None
        if unknown:
            raise serializers.ValidationError(unknown)
        return value
