"""Customers of the legacy MySQL table (legacy_db)."""

from typing import Any

from rest_framework import serializers

from api.permissions import LEGACY_PII_FIELDS, LEGACY_PII_NOTE, may_read_all_pii
from api.serializers.fields import Limit, StrictCharField, StrictEmailField
from api.serializers.input import InputSerializer
from api.serializers.output import OutputSerializer


# The fields a ModelSerializer of LegacyCustomer builds (same schema), written through a plan made
# once (api.serializers.output). A customer's name and email are personal data: null unless the
# caller has ``pii:read`` (``context["request"]``; without one, never: fail closed).
class LegacyCustomerOutputSerializer(OutputSerializer):
    customer_id = serializers.IntegerField(read_only=True)
    customer_name = serializers.CharField(
        allow_null=True, read_only=True, help_text=f"The customer's name (1 to 100 characters). {LEGACY_PII_NOTE}"
    )
    customer_email = serializers.CharField(
        allow_null=True, read_only=True, help_text=f"The customer's email address. {LEGACY_PII_NOTE}"
    )
    created_date = serializers.DateTimeField(read_only=True)

    def finish(self, data: dict[str, Any]) -> dict[str, Any]:
        if not may_read_all_pii(self.context.get("request")):
            for name in LEGACY_PII_FIELDS:
                data[name] = None
        return data


class LegacyCustomerInputSerializer(InputSerializer):
    customer_name = StrictCharField(max_length=Limit("LEGACY_CUSTOMER_NAME_MAX_CHARS"))
    customer_email = StrictEmailField(max_length=Limit("LEGACY_CUSTOMER_EMAIL_MAX_CHARS"))
