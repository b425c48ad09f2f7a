"""Pagination of the lists.

Page numbers (``?page=``, ``?page_size=``) for users, posts and customers; a cursor on the
timestamp (``?cursor=``, ``?page_size=``) for analytics events.

Decided behaviour for bad values (documented in the OpenAPI parameters):

- ``page_size`` that is not an integer from 1 to 200 is a **400** naming ``page_size`` (never
  silently clamped: a client asking for 500 rows should learn it gets at most 200);
- ``page`` that is not a positive integer (or ``last``) is a **400**; a page number past the last
  page is a **404**, as in DRF;
- a ``cursor`` that was not produced by the API is a **400**.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator as DjangoPaginator
from django.utils.functional import cached_property

from django.core.paginator import InvalidPage
from django.utils.dateparse import parse_datetime
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 20


def _bounded_int(request: Request, name: str, default: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        expected = f"an integer from 1 to {maximum}" if maximum else "a positive integer"
        raise ValidationError({name: [f"Must be {expected}."]}, code="invalid")
    value = int(raw)
    if value < 1:
        raise ValidationError({name: ["Must be at least 1."]}, code="min_value")
    if maximum is not None and value > maximum:
        raise ValidationError({name: [f"Must be at most {maximum}."]}, code="max_value")
    return value


_count_lock = threading.Lock()
_counts: OrderedDict[tuple, tuple[float, int]] = OrderedDict()
_COUNT_CACHE_ENTRIES = 512


def cached_count(queryset: Any) -> int:
    """``queryset.count()``, remembered briefly when it is large.

    A count of a big table is most of a page's cost on PostgreSQL. A count of at least
    ``LIST_COUNT_CACHE_MIN_ROWS`` rows is reused for ``LIST_COUNT_CACHE_SECONDS`` by this process
    (so ``count`` may lag writes by that long on large lists); smaller counts are always exact.
    """
    seconds = settings.LIST_COUNT_CACHE_SECONDS
    if seconds <= 0:
        return queryset.count()
    sql, params = queryset.query.sql_with_params()
    key = (queryset.db, queryset.model._meta.label, sql, tuple(map(repr, params)))
    now = time.monotonic()
    with _count_lock:
        hit = _counts.get(key)
    if hit is not None and now - hit[0] < seconds:
        return hit[1]
    count = queryset.count()
    if count >= settings.LIST_COUNT_CACHE_MIN_ROWS:
        with _count_lock:
            _counts[key] = (now, count)
            _counts.move_to_end(key)
            while len(_counts) > _COUNT_CACHE_ENTRIES:
                _counts.popitem(last=False)
    return count


class CountCachingPaginator(DjangoPaginator):
    @cached_property
    def count(self) -> int:
        return cached_count(self.object_list)


class PageNumberPagination(pagination.PageNumberPagination):
    """``{"count", "next", "previous", "results"}``: ``?page=`` and ``?page_size=`` (1 to 200)."""

    django_paginator_class = CountCachingPaginator
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size_query_description = f"Rows per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); larger is a 400."
    page_query_description = "Page number from 1 (or `last`); a page past the end is a 404."

    def get_page_size(self, request: Request) -> int:
        return _bounded_int(request, self.page_size_query_param, self.page_size, self.max_page_size)

    def get_page_number(self, request: Request, paginator: Any) -> int | str:
        raw = request.query_params.get(self.page_query_param)
        if raw in self.last_page_strings:
            return paginator.num_pages
        return _bounded_int(request, self.page_query_param, 1, None)

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list | None:
        self.request = request
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        page_number = self.get_page_number(request, paginator)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage as exc:
            raise NotFound(f"Page {page_number} does not exist: {exc}") from exc
        return list(self.page)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": self.page_query_description,
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": self.page_size_query_description,
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


class TimestampCursorPagination(pagination.CursorPagination):
    """``{"next", "previous", "results"}``, newest first, by ``timestamp`` (no ``count``)."""

    ordering = ("-timestamp", "-id")
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size_query_description = f"Rows per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}); larger is a 400."
    cursor_query_description = "Opaque cursor from a previous page's `next` or `previous` link."

    def get_page_size(self, request: Request) -> int:
        return _bounded_int(request, self.page_size_query_param, self.page_size, self.max_page_size)

    def decode_cursor(self, request: Request) -> Any:
        if request.query_params.get(self.cursor_query_param) == "":
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]}) from None
        if cursor is not None and cursor.position is not None and parse_datetime_safe(cursor.position) is None:
            raise ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        return cursor

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
        return params


def parse_datetime_safe(value: str) -> Any:
    try:
        return parse_datetime(value)
    except (ValueError, OverflowError):
        return None
