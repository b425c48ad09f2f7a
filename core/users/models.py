from django.db import models
from django.db.models.functions import Lower


class User(models.Model):
    """A Switchyard user. Lives on users_db; other databases refer to it by plain id."""

    username = models.CharField(max_length=150, unique=True)
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "users_user"
        ordering = ["id"]
        # Built CONCURRENTLY on PostgreSQL by migration 0002 (RunSQL), declared here for the state.
        indexes = [models.Index(Lower("email"), name="users_user_email_lower")]
        # One user per username whatever its case (built CONCURRENTLY on PostgreSQL by migration 0003).
        constraints = [models.UniqueConstraint(Lower("username"), name="users_user_username_lower_uniq")]

    def __str__(self) -> str:
        return self.username
