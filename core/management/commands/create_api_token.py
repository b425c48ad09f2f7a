"""``manage.py create_api_token USERNAME [--staff]``: issue (or show) the API token of an account."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import router, transaction
from rest_framework.authtoken.models import Token


def api_token_issue(*, username: str, staff: bool = False, rotate: bool = False) -> tuple[Token, bool]:
    """The account ``username`` (created when missing, without a usable password) and its token.

    ``staff`` makes the account staff (never removes it); ``rotate`` replaces an existing token.
    Returns the token and whether the account was created.
    """
    accounts = get_user_model()
    with transaction.atomic(using=router.db_for_write(Token)):
        account, created = accounts.objects.get_or_create(username=username, defaults={"is_staff": staff})
        if created:
            account.set_unusable_password()
            account.save(update_fields=["password"])
        elif staff and not account.is_staff:
            account.is_staff = True
            account.save(update_fields=["is_staff"])
        if rotate:
            Token.objects.filter(user=account).delete()
        token, _ = Token.objects.get_or_create(user=account)
    return token, created


class Command(BaseCommand):
    help = "Issue the API token of an account (created when missing). Prints the key on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="make the account staff (writes to users/customers)")
        parser.add_argument("--rotate", action="store_true", help="replace the account's existing token")

    def handle(self, *args: Any, username: str, staff: bool, rotate: bool, **options: Any) -> None:
        token, created = api_token_issue(username=username, staff=staff, rotate=rotate)
        kind = "staff" if token.user.is_staff else "non-staff"
        self.stderr.write(f"{'created' if created else 'existing'} {kind} account {username!r}")
        self.stdout.write(token.key)
