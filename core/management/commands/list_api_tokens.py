"""``manage.py list_api_tokens``: every token's prefix, account, scopes, bound user, expiry, last use. Never a key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.tokens.services import token_list


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "-"


class Command(BaseCommand):
    help = "List API tokens (prefix, account, scopes, bound user, expiry, last use, revoked); never a key."

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [("PREFIX", "ACCOUNT", "SCOPES", "BOUND_USER", "EXPIRES", "LAST_USED", "REVOKED")]
        for token in token_list():
            rows.append(
                (
                    token.prefix,
                    token.account.username + (" (staff)" if token.account.is_staff else ""),
                    ",".join(token.scopes.split()),
                    str(token.bound_user_id) if token.bound_user_id else "-",
                    _when(token.expires_at),
                    _when(token.last_used_at),
                    _when(token.revoked_at),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
