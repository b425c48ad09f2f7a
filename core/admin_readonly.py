"""Read-only Django admin pages for operators (issue 15, item 9; docs/operations-admin in README).

What an operator needs to look at without a database shell: saga runs and their steps, the
stored ``Idempotency-Key`` answers, and API tokens. Nothing can be added, changed or deleted here
(the management commands do that: ``recover_sagas``, ``dbmaint --cleanup-idempotency``,
``create_api_token`` / ``revoke_api_token``). Left out on purpose:

- an API token's ``digest`` (and the idempotency ``scope``, which is derived from the key): a key
  is shown once, when it is created, and never again anywhere;
- saga ``context`` and step ``payload``, idempotency answers' bodies and headers: they hold
  personal data (usernames, emails) of the requests.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff with the model's view permission (superusers always); never written."""

    list_per_page = 50
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.fields or self.list_display

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
