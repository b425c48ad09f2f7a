"""The largest answer of each list, worked out from the size bounds (docs/api.md, "Limits").

A list's maximal row is written by the list's own output serializer and renderer from a synthetic
row in which every text field is at its configured bound in the character JSON writes longest
(U+0001, written ``\\u0001``: 6 bytes; a 4-byte UTF-8 character, ``"`` or ``\\`` take less), every
id is 2**63-1 and every time the longest ISO 8601 text; an event's ``data`` takes its whole
``EVENT_DATA_MAX_BYTES``, which is measured as the API writes it back. A page holds at most
``max_page_size(name)`` rows: 200, or fewer when 200 maximal rows would weigh more than
``LIST_MAX_ANSWER_BYTES`` with the page's envelope. The envelope (``count``, the ``next`` and
``previous`` links, brackets) is at most :data:`ENVELOPE_BYTES`: each link copies the request's
URL, which gunicorn bounds at ``GUNICORN_LIMIT_REQUEST_LINE`` (8190 bytes) and nginx at its 8 KiB
header buffers. The values are computed once per configuration.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

from django.conf import settings

from api.renderers import dumps

#: The character JSON writes longest among those the API stores: ``\u0001``, 6 bytes.
WORST_CHAR = "\x01"
BIG_ID = 2**63 - 1
#: The longest ISO 8601 text of a time the API writes (``9999-12-31T23:59:59.999999Z``).
LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC)
#: ``{"count":N,"next":URL,"previous":URL,"results":[...]}`` without its rows: two links of at
#: most 8190 bytes each (the request line's bound) with room to spare.
ENVELOPE_BYTES = 32 * 1024
#: The largest page of any list.
MAX_PAGE_SIZE = 200
#: The most users ``GET /api/v1/reports/new-user-activity/`` lists (``truncated`` past them).
MAX_REPORT_USERS = 5000


def _text(setting: str) -> str:
    return WORST_CHAR * int(getattr(settings, setting))


def _post_row() -> bytes:
    from api.serializers.posts import PostOutputSerializer

    row = {
        "id": BIG_ID,
        "title": _text("POST_TITLE_MAX_CHARS"),
        "content": _text("POST_CONTENT_MAX_CHARS"),
        "author_id": BIG_ID,
        "author": {"id": BIG_ID, "username": _text("USER_USERNAME_MAX_CHARS")},
        "created_at": LATEST,
        "updated_at": LATEST,
    }
    return dumps(PostOutputSerializer(row).data)


def _user_row() -> bytes:
    from api.serializers.users import UserOutputSerializer

    row = {
        "id": BIG_ID,
        "username": _text("USER_USERNAME_MAX_CHARS"),
        "email": _text("USER_EMAIL_MAX_CHARS"),
        "first_name": _text("USER_NAME_MAX_CHARS"),
        "last_name": _text("USER_NAME_MAX_CHARS"),
        "created_at": LATEST,
        "updated_at": LATEST,
    }
    # Without a request the personal fields are null; at their longest (as a caller with pii:read
    # reads them) they are the row's own text, in the same places.
    written = UserOutputSerializer(row).data
    return dumps({name: row.get(name) if written[name] is None else written[name] for name in written})


def _customer_row() -> bytes:
    from api.serializers.legacy import LegacyCustomerOutputSerializer

    row = {
        "customer_id": 2**31 - 1,
        "customer_name": _text("LEGACY_CUSTOMER_NAME_MAX_CHARS"),
        "customer_email": _text("LEGACY_CUSTOMER_EMAIL_MAX_CHARS"),
        "created_date": LATEST,
    }
    # Without a request the personal fields are null (as for users, above): at their longest they
    # are the row's own text.
    written = LegacyCustomerOutputSerializer(row).data
    return dumps({name: row.get(name) if written[name] is None else written[name] for name in written})


def _event_row() -> bytes:
    from api.serializers.analytics import EventOutputSerializer

    row = {
        "id": BIG_ID,
        "event_type": _text("EVENT_TYPE_MAX_CHARS"),
        "user_id": BIG_ID,
        "session_id": _text("EVENT_SESSION_ID_MAX_CHARS"),
        "timestamp": LATEST,
        "data": {},
    }
    # ``{}`` (2 bytes) stands for data of EVENT_DATA_MAX_BYTES as written back.
    return dumps(EventOutputSerializer(row).data) + b"_" * (settings.EVENT_DATA_MAX_BYTES - 2)


def _report_user_row() -> bytes:
    row = {
        "id": BIG_ID,
        "username": _text("USER_USERNAME_MAX_CHARS"),
        "email": _text("USER_EMAIL_MAX_CHARS"),
        "created_at": LATEST,
        "event_count": BIG_ID,
    }
    return dumps(row)


#: list name -> (the bytes of its maximal row, the most rows it ever holds)
LISTS: dict[str, tuple[Callable[[], bytes], int]] = {
    "posts": (_post_row, MAX_PAGE_SIZE),
    "users": (_user_row, MAX_PAGE_SIZE),
    "customers": (_customer_row, MAX_PAGE_SIZE),
    "events": (_event_row, MAX_PAGE_SIZE),
    "new_user_report": (_report_user_row, MAX_REPORT_USERS),
}
#: the settings a maximal row depends on (a change of any is a new computation)
BOUND_SETTINGS = (
    "POST_TITLE_MAX_CHARS",
    "POST_CONTENT_MAX_CHARS",
    "USER_USERNAME_MAX_CHARS",
    "USER_EMAIL_MAX_CHARS",
    "USER_NAME_MAX_CHARS",
    "LEGACY_CUSTOMER_NAME_MAX_CHARS",
    "LEGACY_CUSTOMER_EMAIL_MAX_CHARS",
    "EVENT_TYPE_MAX_CHARS",
    "EVENT_SESSION_ID_MAX_CHARS",
    "EVENT_DATA_MAX_BYTES",
    "LIST_MAX_ANSWER_BYTES",
)


@functools.lru_cache(maxsize=64)
def _figures(name: str, configuration: tuple[int, ...]) -> tuple[int, int, int]:
    maximal_row, most = LISTS[name]
    row = len(maximal_row()) + 1  # and the comma between rows
    budget = settings.LIST_MAX_ANSWER_BYTES - ENVELOPE_BYTES
    page = max(1, min(most, budget // row))
    return row, page, ENVELOPE_BYTES + page * row


def figures(name: str) -> tuple[int, int, int]:
    """``(maximal row bytes, most rows in one answer, maximal answer bytes)`` of the list ``name``."""
    return _figures(name, tuple(int(getattr(settings, setting)) for setting in BOUND_SETTINGS))


def max_page_size(name: str | None) -> int:
    """The largest page of the list ``name`` (200 for a list without a maximal row here)."""
    return figures(name)[1] if name in LISTS else MAX_PAGE_SIZE
