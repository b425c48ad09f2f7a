"""``manage.py create_api_token USERNAME [--staff] [--scopes read,posts:write] [--user-id N] [--expires 30d]``.

Issues a new token for the account (created when missing) and prints its key once, on stdout: only
a hash is stored, so the key cannot be shown again (docs/security.md).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.tokens import scopes as scope_names
from core.tokens.services import TokenError, parse_duration, token_create


class Command(BaseCommand):
    help = "Issue a new API token (the account is created when missing); prints the key once on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="make the account staff; the token gets every scope")
        parser.add_argument(
            "--scopes", help=f"comma list of scopes (default: read). Known: {', '.join(scope_names.ALL)}"
        )
        parser.add_argument("--user-id", type=int, help="bind the token to this user id of users_db")
        parser.add_argument("--expires", help="lifetime, e.g. 30d, 12h, 90m, 2w (default: none)")

    def handle(
        self,
        *args: Any,
        username: str,
        staff: bool,
        scopes: str | None,
        user_id: int | None,
        expires: str | None,
        **options: Any,
    ) -> None:
        try:
            granted = scope_names.parse(scopes) if scopes is not None else None
            lifetime = parse_duration(expires) if expires else None
            issued = token_create(
                username=username, staff=staff, scopes=granted, bound_user_id=user_id, expires_in=lifetime
            )
        except (TokenError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        token = issued.token
        kind = "staff" if token.account.is_staff else "non-staff"
        bound = f", bound to user {token.bound_user_id}" if token.bound_user_id else ""
        expiry = f", expires {token.expires_at.isoformat()}" if token.expires_at else ""
        self.stderr.write(
            f"{'created' if issued.account_created else 'existing'} {kind} account {username!r}; token {token.prefix} "
            f"scopes {token.scopes}{bound}{expiry}. The key is shown once:"
        )
        self.stdout.write(issued.key)
