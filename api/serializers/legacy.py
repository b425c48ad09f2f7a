"""Customers of the legacy MySQL table (legacy_db)."""

from rest_framework import serializers

from core.legacy.models import LegacyCustomer


class LegacyCustomerOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = LegacyCustomer
        fields = ["customer_id", "customer_name", "customer_email", "created_date"]
        read_only_fields = fields


class LegacyCustomerInputSerializer(serializers.Serializer):
    customer_name = serializers.CharField(max_length=100)
    customer_email = serializers.EmailField(max_length=100)
