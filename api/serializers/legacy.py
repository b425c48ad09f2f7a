"""Customers of the legacy MySQL table (legacy_db)."""

from rest_framework import serializers

from api.serializers.fields import StrictCharField, StrictEmailField
from core.legacy.models import LegacyCustomer


class LegacyCustomerOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = LegacyCustomer
        fields = ["customer_id", "customer_name", "customer_email", "created_date"]
        read_only_fields = fields


class LegacyCustomerInputSerializer(serializers.Serializer):
    customer_name = StrictCharField(max_length=100)
    customer_email = StrictEmailField(max_length=100)
