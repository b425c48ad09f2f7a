"""Customers of the legacy MySQL table (legacy_db)."""

from rest_framework import serializers

from api.serializers.fields import Limit, StrictCharField, StrictEmailField
from api.serializers.output import OutputSerializer


# The fields a ModelSerializer of LegacyCustomer builds (same schema), written through a plan made
# once (api.serializers.output).
class LegacyCustomerOutputSerializer(OutputSerializer):
    customer_id = serializers.IntegerField(read_only=True)
    customer_name = serializers.CharField(read_only=True)
    customer_email = serializers.CharField(read_only=True)
    created_date = serializers.DateTimeField(read_only=True)


class LegacyCustomerInputSerializer(serializers.Serializer):
    customer_name = StrictCharField(max_length=Limit("LEGACY_CUSTOMER_NAME_MAX_CHARS"))
    customer_email = StrictEmailField(max_length=Limit("LEGACY_CUSTOMER_EMAIL_MAX_CHARS"))
