"""``manage.py revoke_api_token PREFIX``: the token is refused from now on, by every process that
shares CACHE_URL at once (docs/security.md)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.tokens.services import TokenError, token_revoke


class Command(BaseCommand):
    help = "Revoke the API token with this prefix (see list_api_tokens)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, prefix: str, **options: Any) -> None:
        try:
            token = token_revoke(prefix=prefix)
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"revoked {token.prefix} ({token.account.username}) at {token.revoked_at.isoformat()}")
