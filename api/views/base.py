"""The base of the resource viewsets: thin views over selectors and services."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers, viewsets

from api.filters import BIGINT_MAX, check_known_parameters
from core.errors import NotFound

#: The codes of a value over a size bound (docs/api.md, "Limits").
SIZE_CODES = frozenset({"max_length", "max_bytes", "max_properties", "max_depth"})


class ResourceViewSet(viewsets.GenericViewSet):
    # Filters, search and ordering apply to ``list`` only, and a list refuses unknown parameters.
    # Detail routes take an integer id: anything else, or an id beyond a signed 64-bit integer,
    # cannot exist and is a 404 without asking the database (see ``object_id``).
    #: what a missing row is called in a 404 (``No user with id 5 exists.``)
    resource_name = "object"

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action != "list":
            return queryset
        check_known_parameters(self.request, self)
        return super().filter_queryset(queryset)

    def check_sizes(self, serializer_class: type[serializers.Serializer]) -> None:
        """Refuse a write body with a value over a size bound before any database work (a write
        to one object reads and locks it first): the fields it sends are validated alone, and
        only their size errors are answered here; everything else is left to the full validation
        that follows, after the object's preconditions (412, 428)."""
        data = serializer_class(data=self.request.data, partial=True)
        if data.is_valid():
            return
        sizes = {
            name: found
            for name, found in data.errors.items()
            if isinstance(found, list) and any(getattr(error, "code", None) in SIZE_CODES for error in found)
        }
        if sizes:
            raise serializers.ValidationError(sizes)

    def object_id(self) -> int:
        raw = str(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        # ASCII digits only: int() would also take " 7", "1_0" or "٣".
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not 1 <= int(raw) <= BIGINT_MAX:
            raise NotFound(self.resource_name, raw[:40])
        return int(raw)

    def get_object(self) -> Any:  # pragma: no cover - each viewset reads through its selector
        raise NotImplementedError
