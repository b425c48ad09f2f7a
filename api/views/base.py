"""The base of the resource viewsets: thin views over selectors and services."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework import serializers, viewsets
from rest_framework.request import Request

from api.filters import BIGINT_MAX, check_known_parameters, known_parameters
from api.query_params import ascii_int, check_query_parameters, handles_method
from core.errors import NotFound
from core.statement_timeout import statement_timeout

#: The codes of a value over a size bound (docs/api.md, "Limits").
SIZE_CODES = frozenset({"max_length", "max_bytes", "max_properties", "max_depth"})


class ResourceViewSet(viewsets.GenericViewSet):
    # Filters, search and ordering apply to ``list`` only, and a list refuses unknown parameters.
    # Detail routes take an integer id: anything else, or an id beyond a signed 64-bit integer,
    # cannot exist and is a 404 without asking the database (see ``object_id``).
    #: what a missing row is called in a 404 (``No user with id 5 exists.``)
    resource_name = "object"
    #: The query parameters of each action other than ``list`` (whose are its filters, search,
    #: ordering and paging): any other, or one given twice, is a 400 (``api.query_params``).
    action_query_parameters: dict[str, tuple[str, ...]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not handles_method(self, request):
            return
        if self.action == "list":
            accepted = known_parameters(self)
        else:
            accepted = frozenset(self.action_query_parameters.get(self.action or "", ()))
        check_query_parameters(request, accepted)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if self.action != "list":
            return queryset
        check_known_parameters(self.request, self)
        return super().filter_queryset(queryset)

    def paginate_queryset(self, queryset: QuerySet) -> list | None:
        """One page of the list, its COUNT(*) included, with each statement limited to
        ``LIST_STATEMENT_TIMEOUT_MS`` on the database it reads (a 503 ``query-timeout`` beyond)."""
        with statement_timeout(queryset.db, settings.LIST_STATEMENT_TIMEOUT_MS):
            return super().paginate_queryset(queryset)

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
        # ASCII digits only (api.query_params): int() would also take " 7", "+7", "1_0" or "٣".
        number = ascii_int(raw)
        if number is None or not 1 <= number <= BIGINT_MAX:
            raise NotFound(self.resource_name, raw[:40])
        return number

    def get_object(self) -> Any:  # pragma: no cover - each viewset reads through its selector
        raise NotImplementedError
