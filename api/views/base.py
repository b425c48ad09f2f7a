"""The base of the resource viewsets: thin views over selectors and services."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework import viewsets

from api.filters import BIGINT_MAX, check_known_parameters
from core.errors import NotFound
from core.statement_timeout import statement_timeout


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

    def paginate_queryset(self, queryset: QuerySet) -> list | None:
        """One page of the list, its COUNT(*) included, with each statement limited to
        ``LIST_STATEMENT_TIMEOUT_MS`` on the database it reads (a 503 ``query-timeout`` beyond)."""
        with statement_timeout(queryset.db, settings.LIST_STATEMENT_TIMEOUT_MS):
            return super().paginate_queryset(queryset)

    def object_id(self) -> int:
        raw = str(self.kwargs[self.lookup_url_kwarg or self.lookup_field])
        # ASCII digits only: int() would also take " 7", "1_0" or "٣".
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not 1 <= int(raw) <= BIGINT_MAX:
            raise NotFound(self.resource_name, raw[:40])
        return int(raw)

    def get_object(self) -> Any:  # pragma: no cover - each viewset reads through its selector
        raise NotImplementedError
