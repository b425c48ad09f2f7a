"""Reads of the legacy ``customers`` table (legacy_db)."""

from __future__ import annotations

from django.db.models import QuerySet

from core.errors import NotFound
from core.legacy.models import LegacyCustomer


def customer_list() -> QuerySet[LegacyCustomer]:
    return LegacyCustomer.objects.all()


def customer_rows(queryset: QuerySet[LegacyCustomer]) -> QuerySet[LegacyCustomer]:
    """The API's columns of ``queryset`` as plain dicts (``.values()``): a page without model instances."""
    return queryset.values("customer_id", "customer_name", "customer_email", "created_date")


def customer_get(*, customer_id: int) -> LegacyCustomer:
    customer = LegacyCustomer.objects.by_pk(customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    return customer
