"""Existing DRF tokens (``authtoken_token``, keys in clear) become hashed API tokens, and the clear
keys are deleted: after this migration no table holds a usable key.

Each keeps working with the same header. What it may do is what it could do before scopes existed:
a staff account's token every scope; any other the reads (emails included) and the writes that were
open to every token (posts, events, registrations), unbound. Narrow them by issuing new tokens and revoking these
(``list_api_tokens`` shows them; docs/security.md).
"""

import hashlib

from django.db import migrations

ALL = "read posts:write events:write users:write registrations:write legacy:write pii:read admin"
NON_STAFF = "read posts:write events:write registrations:write pii:read"


def hash_drf_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("tokens", "ApiToken")
    db = schema_editor.connection.alias
    for token in Token.objects.using(db).select_related("user").iterator():
        key = token.key
        ApiToken.objects.using(db).create(
            prefix=key[:12],
            digest=hashlib.sha256(key.encode()).hexdigest(),
            account_id=token.user_id,
            scopes=ALL if token.user.is_staff else NON_STAFF,
            created_at=token.created,
        )
    Token.objects.using(db).all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tokens", "0001_initial"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    # Not reversible: the clear keys are gone (that is the point).
    operations = [migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop)]
