"""Pagination of the lists.

Page numbers (``?page=``, ``?page_size=``) for users, posts and customers; a keyset cursor on
``(timestamp, id)`` (``?cursor=``, ``?page_size=``) for analytics events.

Decided behaviour for bad values (documented in the OpenAPI parameters):

Numbers are ASCII digits (``api.query_params``), and each parameter is given at most once (the
views check that before paginating).

- ``page_size`` that is not an integer from 1 to the list's maximum is a **400** naming
  ``page_size`` (never silently clamped: a client asking for 500 rows should learn it gets at most
  200). The maximum is 200, or less for a list whose maximal rows would make a page of 200 weigh
  more than ``LIST_MAX_ANSWER_BYTES`` (posts: 20; :mod:`api.limits`, the view's ``list_name``);
- ``page`` that is not a positive integer (or ``last``) is a **400**; a page number past the last
  page is a **404**, as in DRF;
- a ``cursor`` that was not produced by the API is a **400** (an empty one is the same as none).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.core.paginator import InvalidPage
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import Q
from django.utils.functional import cached_property
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from api import limits
from api.query_params import ascii_int
from core.analytics.selectors import position as row_position

MAX_PAGE_SIZE = limits.MAX_PAGE_SIZE
BIGINT_MAX_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 20


def _bounded_int(request: Request, name: str, default: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = ascii_int(raw)  # ASCII digits only: "+2", " 2", "1_0" and "２" are 400s
    if value is None or len(raw) > 12:
        expected = f"an integer from 1 to {maximum}" if maximum else "a positive integer"
        raise ValidationError({name: [f"Must be {expected}."]}, code="invalid")
    if value < 1:
        raise ValidationError({name: ["Must be at least 1."]}, code="min_value")
    if maximum is not None and value > maximum:
        raise ValidationError({name: [f"Must be at most {maximum}."]}, code="max_value")
    return value


def page_size_bounds(view: Any) -> tuple[int, int]:
    """``(default, maximum)`` page size of ``view``'s list: the maximum from :mod:`api.limits` by
    the view's ``list_name``, the default 20 or that maximum when it is smaller."""
    maximum = limits.max_page_size(getattr(view, "list_name", None))
    return min(DEFAULT_PAGE_SIZE, maximum), maximum


def page_size_description(maximum: int) -> str:
    default = min(DEFAULT_PAGE_SIZE, maximum)
    return f"Rows per page, 1 to {maximum} (default {default}); larger is a 400."


_count_lock = threading.Lock()
_counts: OrderedDict[tuple, tuple[float, int]] = OrderedDict()
_COUNT_CACHE_ENTRIES = 512


def cached_count(queryset: Any, what: tuple | None = None) -> int:
    """``queryset.count()``, remembered briefly when it is large.

    A count of a big table is most of a page's cost on PostgreSQL. A count of at least
    ``LIST_COUNT_CACHE_MIN_ROWS`` rows is reused for ``LIST_COUNT_CACHE_SECONDS`` by this process
    (so ``count`` may lag writes by that long on large lists); smaller counts are always exact.
    ``what`` names the rows counted (the list's path and its filtering parameters) when the
    caller knows it; otherwise the queryset's SQL does, which costs compiling it.
    """
    seconds = settings.LIST_COUNT_CACHE_SECONDS
    if seconds <= 0:
        return queryset.count()
    if what is None:
        sql, params = queryset.query.sql_with_params()
        what = (sql, tuple(map(repr, params)))
    key = (queryset.db, queryset.model._meta.label, what)
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
    #: what the rows are (see :func:`cached_count`); set by the pagination class
    counted: tuple | None = None

    @cached_property
    def count(self) -> int:
        return cached_count(self.object_list, self.counted)


_NOT_FILTERING = frozenset({"page", "page_size", "ordering"})


class PageNumberPagination(pagination.PageNumberPagination):
    """``{"count", "next", "previous", "results"}``: ``?page=`` and ``?page_size=`` (1 to the
    list's maximum, :func:`page_size_bounds`)."""

    django_paginator_class = CountCachingPaginator
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
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
        self.page_size, self.max_page_size = page_size_bounds(view)
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        # The rows of a list are named by its path and the parameters that filter it (a page's
        # number, size and order do not change the count).
        paginator.counted = (
            request.path,
            tuple(
                sorted(
                    (name, tuple(values)) for name, values in request.query_params.lists() if name not in _NOT_FILTERING
                )
            ),
        )
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
                "description": page_size_description(page_size_bounds(view)[1]),
                "schema": {"type": "integer", "minimum": 1, "maximum": page_size_bounds(view)[1]},
            },
        ]


class TimestampCursorPagination(pagination.CursorPagination):
    """``{"next", "previous", "results"}``, newest first, by a keyset cursor on ``(timestamp, id)``.

    No offsets: the cursor carries the ``timestamp`` and ``id`` of the row it continues from and the
    direction, and a page is ``(timestamp < t) OR (timestamp = t AND id < i)`` newest first (the
    reverse for ``previous``), so any number of events sharing one timestamp is walked exactly once
    in either direction, each page one query. The cursor is opaque to clients (URL-safe base64).
    """

    ordering = ("-timestamp", "-id")
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    cursor_query_description = (
        "Opaque cursor from a previous page's `next` or `previous` link (empty is the same as absent); "
        "any other value is a 400."
    )

    def get_page_size(self, request: Request) -> int:
        return _bounded_int(request, self.page_size_query_param, self.page_size, self.max_page_size)

    # --- the cursor ------------------------------------------------------------------------------
    @staticmethod
    def _encode(timestamp: dt.datetime, ident: int, reverse: bool) -> str:
        raw = f"{'p' if reverse else 'n'}|{timestamp.isoformat()}|{ident}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _invalid(self) -> ValidationError:
        return ValidationError({self.cursor_query_param: ["Invalid cursor."]}, code="invalid")

    def decode_keyset(self, request: Request) -> tuple[dt.datetime, int, bool] | None:
        """``(timestamp, id, reverse)`` from ``?cursor=``, None without one; anything else a 400."""
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None or raw == "":
            return None
        try:
            if len(raw) > 200 or not raw.isascii() or not raw.replace("-", "").replace("_", "").isalnum():
                raise ValueError(raw)
            text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
            direction, stamp, ident = text.split("|")
            timestamp = dt.datetime.fromisoformat(stamp)
            if direction not in ("n", "p") or timestamp.tzinfo is None:
                raise ValueError(text)
            if not (ident.isascii() and ident.isdigit() and 0 <= int(ident) <= BIGINT_MAX_ID):
                raise ValueError(text)
        except (ValueError, UnicodeError, binascii.Error, OverflowError):
            raise self._invalid() from None
        return timestamp, int(ident), direction == "p"

    # --- a page ----------------------------------------------------------------------------------
    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> list | None:
        self.request = request
        self.base_url = request.build_absolute_uri()
        self.page_size, self.max_page_size = page_size_bounds(view)
        self.page_size = self.get_page_size(request)
        position = self.decode_keyset(request)
        queryset = queryset.order_by()
        if position is None:
            rows = list(queryset.order_by("-timestamp", "-id")[: self.page_size + 1])
            self.page = rows[: self.page_size]
            self._next = self._at(self.page[-1], False) if len(rows) > self.page_size else None
            self._previous = None
            return self.page
        timestamp, ident, reverse = position
        if not reverse:
            # The redundant bound on timestamp alone lets the index scan start at the cursor (the
            # OR alone is a filter read from the newest row down: cost grew with the page's depth).
            after = Q(timestamp__lte=timestamp) & (Q(timestamp__lt=timestamp) | Q(timestamp=timestamp, id__lt=ident))
            rows = list(queryset.filter(after).order_by("-timestamp", "-id")[: self.page_size + 1])
            self.page = rows[: self.page_size]
            self._next = self._at(self.page[-1], False) if len(rows) > self.page_size else None
            # An empty page: the previous one ends with the cursor's own row (bounds are exclusive).
            first = row_position(self.page[0]) if self.page else (timestamp, ident - 1)
            self._previous = self._encode(first[0], first[1], True)
            return self.page
        before = Q(timestamp__gte=timestamp) & (Q(timestamp__gt=timestamp) | Q(timestamp=timestamp, id__gt=ident))
        rows = list(queryset.filter(before).order_by("timestamp", "id")[: self.page_size + 1])
        self.page = list(reversed(rows[: self.page_size]))
        self._previous = self._at(self.page[0], True) if len(rows) > self.page_size else None
        last = row_position(self.page[-1]) if self.page else (timestamp, ident + 1)
        self._next = self._encode(last[0], last[1], False)
        return self.page

    def _at(self, row: Any, reverse: bool) -> str:
        return self._encode(*row_position(row), reverse)

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(self.base_url, self.cursor_query_param, cursor)

    def get_next_link(self) -> str | None:
        return self._link(self._next)

    def get_previous_link(self) -> str | None:
        return self._link(self._previous)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        maximum = page_size_bounds(view)[1]
        for param in params:
            if param["name"] == self.page_size_query_param:
                param["description"] = page_size_description(maximum)
                param["schema"] = {"type": "integer", "minimum": 1, "maximum": maximum}
        return params
