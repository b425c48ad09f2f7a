"""Filtering, search and ordering of the lists: strict, so that a typo is a 400 and not a silent no-op.

- :class:`StrictOrderingFilter`: ``?ordering=`` with a field that is not listed is a 400 naming it
  (DRF's own filter silently drops it); the primary key is appended as a tie-breaker so that pages
  are stable.
- :class:`StrictSearchFilter`: ``?search=`` is bounded before it reaches a database: at most
  ``SEARCH_MAX_LENGTH`` characters without NUL bytes, at most ``SEARCH_MAX_TERMS`` terms of at most
  ``SEARCH_MAX_TERM_LENGTH`` characters each, else a 400 on ``search``. A view with a ``search``
  method (posts: full-text search on PostgreSQL) is given the terms; the others search their
  ``search_fields`` as DRF does (every term in some field, case-insensitive substring).
- :func:`check_known_parameters`: a query parameter that the list does not document, or one given
  twice, is a 400 (``api.query_params``).
- The FilterSets of each resource, with integer filters bounded to a signed 64-bit id, so an
  out-of-range number is a 400 instead of a database error. Every filter is declared, so the
  FilterSets name no model: the view's queryset (from its app's selectors) is what they filter, and
  this module imports no app's models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from api.permissions import PII_FIELDS, require_pii_read
from api.query_params import AsciiIntegerFormField, check_query_parameters

BIGINT_MAX = 2**63 - 1


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, skipped when the request names none of the FilterSet's
    parameters (the same result: an empty FilterSet filters nothing), which saves building and
    validating a form on every plain page."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = getattr(view, "filterset_class", None)
        params = request.query_params
        if filterset_class is not None and not any(name in params for name in filterset_class.base_filters):
            return queryset
        for name in getattr(filterset_class, "pii_filters", ()):
            if name in params:  # an oracle for "is this email registered?" (api.permissions)
                require_pii_read(request, f"The `{name}` filter")
        return super().filter_queryset(request, queryset, view)


class StrictOrderingFilter(filters.OrderingFilter):
    ordering_description = (
        "Comma-separated fields to order by; prefix `-` for descending. Unknown fields are a 400; "
        "empty is the default order."
    )

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if not raw:  # absent, or sent empty (`?ordering=`): the default order
            return self.get_default_ordering(view)
        valid = {item[0] for item in self.get_valid_fields(queryset, view, {"request": request})}
        terms = [term.strip() for term in raw.split(",")]
        bad = [t for t in terms if not t or t.lstrip("-") not in valid or t.startswith("--")]
        if bad:
            allowed = ", ".join(sorted(valid))
            shown = ", ".join(repr(t) for t in bad[:5])
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Unknown ordering field(s) {shown}; allowed: {allowed} (prefix - to reverse)."
                    ]
                },
                code="invalid_choice",
            )
        names = [t.lstrip("-") for t in terms]
        if len(set(names)) != len(names):
            raise ValidationError({self.ordering_param: ["A field may appear only once."]}, code="invalid")
        for name in names:
            if name in PII_FIELDS:  # the order of a list tells its hidden values apart
                require_pii_read(request, f"Ordering by `{name}`")
        pk = queryset.model._meta.pk.name
        if pk not in names and "pk" not in names:
            terms.append(f"-{pk}" if terms[-1].startswith("-") else pk)
        return terms

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        fields = [f if isinstance(f, str) else f[0] for f in getattr(view, "ordering_fields", None) or []]
        choices = [name for field in fields for name in (field, f"-{field}")]
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": self.ordering_description,
                "schema": {"type": "array", "items": {"type": "string", "enum": choices}, "uniqueItems": True},
                "style": "form",
                "explode": False,
            }
        ]


class StrictSearchFilter(filters.SearchFilter):
    """DRF's search with bounded input (see the module docstring); a view's own ``search(queryset,
    terms)`` replaces the substring search over ``search_fields`` when the view has one."""

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        fields = getattr(view, "search_fields", None) or ()
        if request.query_params.get(self.search_param) and any(f.lstrip("^=@$") in PII_FIELDS for f in fields):
            # A search that covers emails and names would tell who is registered (api.permissions).
            require_pii_read(request, "Searching users (on emails and names)")
        search = getattr(view, "search", None)
        if search is None:
            return super().filter_queryset(request, queryset, view)
        terms = self.get_search_terms(request)
        return search(queryset, terms) if terms else queryset

    def get_search_terms(self, request: Request) -> list[str]:
        value = request.query_params.get(self.search_param, "")
        if "\x00" in value:
            raise ValidationError(
                {self.search_param: ["Null characters are not allowed."]}, code="null_characters_not_allowed"
            )
        if len(value) > settings.SEARCH_MAX_LENGTH:
            raise ValidationError(
                {self.search_param: [f"At most {settings.SEARCH_MAX_LENGTH} characters."]}, code="max_length"
            )
        terms = super().get_search_terms(request)
        if len(terms) > settings.SEARCH_MAX_TERMS:
            raise ValidationError(
                {self.search_param: [f"At most {settings.SEARCH_MAX_TERMS} terms (separated by spaces or commas)."]},
                code="too_many_terms",
            )
        if any(len(term) > settings.SEARCH_MAX_TERM_LENGTH for term in terms):
            raise ValidationError(
                {self.search_param: [f"A term is at most {settings.SEARCH_MAX_TERM_LENGTH} characters."]},
                code="term_too_long",
            )
        return terms

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        description = (
            f"Search terms separated by spaces or commas (a quoted phrase is one term): at most "
            f"{settings.SEARCH_MAX_TERMS} terms of at most {settings.SEARCH_MAX_TERM_LENGTH} characters, "
            f"{settings.SEARCH_MAX_LENGTH} characters in all (else a 400 on `search`); every term must match. "
            "Empty is no search."
        )
        return [
            {
                "name": self.search_param,
                "required": False,
                "in": "query",
                "description": description,
                "schema": {"type": "string", "maxLength": settings.SEARCH_MAX_LENGTH},
            }
        ]


_known: dict[type, frozenset[str]] = {}


def known_parameters(view: Any) -> frozenset[str]:
    """Every query parameter a list view documents: its filters, search, ordering and paging
    (worked out once per view class: they are all declared on the class)."""
    names = _known.get(type(view))
    if names is None:
        names = _known[type(view)] = frozenset(_documented_parameters(view))
    return names


def _documented_parameters(view: Any) -> set[str]:
    names: set[str] = set()
    filterset_class = getattr(view, "filterset_class", None)
    if filterset_class is not None:
        names.update(filterset_class.base_filters)
    for backend in view.filter_backends:
        if hasattr(backend, "get_schema_operation_parameters"):
            for param in backend().get_schema_operation_parameters(view):
                names.add(param["name"])
    paginator = view.paginator
    if paginator is not None:
        for param in paginator.get_schema_operation_parameters(view):
            names.add(param["name"])
    return names


def check_known_parameters(request: Request, view: Any) -> None:
    """Unknown or repeated query parameters (``api.query_params``), and empty values of typed
    filters (``?created_after=``), are 400s."""
    check_query_parameters(request, known_parameters(view))
    filterset_class = getattr(view, "filterset_class", None)
    if filterset_class is not None:
        empty = sorted(
            name
            for name, flt in filterset_class.base_filters.items()
            if not isinstance(flt, django_filters.CharFilter) and request.query_params.get(name) == ""
        )
        if empty:
            raise ValidationError(
                {name: ["A value is required when the parameter is given."] for name in empty}, code="blank"
            )


TIMEZONE_REQUIRED = "Include a timezone, e.g. 2026-11-01T00:00:00Z."
TIME_HELP = " ISO 8601 with a timezone (`2026-11-01T00:00:00Z`); a time without one is a 400."


class AwareDateTimeFormField(IsoDateTimeField):
    """An ISO 8601 date-time that carries a timezone: a naive one (or a bare date) is refused
    rather than guessed to be UTC."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                if parsed is not None or _looks_like_a_date(value.strip()):
                    raise forms.ValidationError(TIMEZONE_REQUIRED, code="timezone_required")
        return super().to_python(value)


def _looks_like_a_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


class AwareDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = AwareDateTimeFormField


class BigIntegerFilter(django_filters.NumberFilter):
    """An integer filter bounded to 1..2**63-1 (ids): out of range is a 400, not a database error;
    ASCII digits only (``２``, ``+2`` or ``1_0`` is a 400: ``api.query_params``)."""

    field_class = AsciiIntegerFormField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


class UserFilterSet(django_filters.FilterSet):
    username = django_filters.CharFilter(
        field_name="username",
        lookup_expr="iexact",
        max_length=150,
        help_text="Exact username, case-insensitive (as uniqueness is).",
    )
    email = django_filters.CharFilter(
        field_name="email",
        lookup_expr="iexact",
        max_length=254,
        help_text="Email, case-insensitive. Needs the `pii:read` scope (403 otherwise).",
    )
    created_after = AwareDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after this time." + TIME_HELP
    )
    created_before = AwareDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this time." + TIME_HELP
    )

    #: filters that need pii:read (FilterBackend)
    pii_filters = ("email",)


class PostFilterSet(django_filters.FilterSet):
    author_id = BigIntegerFilter(field_name="author_id", help_text="Posts by this user id.")
    created_after = AwareDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after this time." + TIME_HELP
    )
    created_before = AwareDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this time." + TIME_HELP
    )


class EventFilterSet(django_filters.FilterSet):
    event_type = django_filters.CharFilter(field_name="event_type", max_length=50, help_text="Exact event type.")
    user_id = BigIntegerFilter(field_name="user_id", help_text="Events of this user id.")
    since = AwareDateTimeFilter(
        field_name="timestamp", lookup_expr="gte", help_text="At or after this time." + TIME_HELP
    )
    until = AwareDateTimeFilter(field_name="timestamp", lookup_expr="lt", help_text="Before this time." + TIME_HELP)
