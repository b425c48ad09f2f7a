"""Writes to the legacy ``customers`` table.

The routers refuse every write to legacy_db unless ``LEGACY_ALLOW_WRITES`` is set (they raise
``routers.primary.LegacyWriteForbidden``, which the API answers with 405); these functions do not
repeat that rule, so it lives in one place.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from core.legacy.models import LegacyCustomer

EDITABLE_FIELDS = ("customer_name", "customer_email")


def customer_create(*, customer_name: str, customer_email: str) -> LegacyCustomer:
    customer = LegacyCustomer(customer_name=customer_name, customer_email=customer_email, created_date=timezone.now())
    customer.full_clean()
    customer.save()
    return customer


def customer_update(*, customer: LegacyCustomer, data: dict[str, Any]) -> LegacyCustomer:
    for field, value in data.items():
        if field in EDITABLE_FIELDS:
            setattr(customer, field, value)
    customer.full_clean()
    customer.save()
    return customer


def customer_delete(*, customer: LegacyCustomer) -> None:
    customer.delete()
