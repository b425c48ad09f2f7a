from django.db import models

from core.querysets import RoutedQuerySet


class LegacyCustomer(models.Model):
    """The existing ``customers`` table on legacy_db (MySQL). We never migrate it."""

    customer_id = models.AutoField(primary_key=True)
    customer_name = models.CharField(max_length=100)
    customer_email = models.CharField(max_length=100)
    created_date = models.DateTimeField()

    objects = RoutedQuerySet.as_manager()

    class Meta:
        managed = False
        db_table = "customers"
        ordering = ["customer_id"]

    def __str__(self) -> str:
        return self.customer_name
