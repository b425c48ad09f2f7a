from django.db import models


class CacheEntry(models.Model):
    """An application cache entry on cache_db (SQLite in production)."""

    key = models.CharField(max_length=255, unique=True)
    value = models.TextField()
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "cache_entry"
        ordering = ["key"]
        verbose_name_plural = "cache entries"

    def __str__(self) -> str:
        return self.key
