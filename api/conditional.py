"""Conditional requests (RFC 9110 section 13) for single resources: users, posts, legacy customers.

- Every 200/201 answer of a single resource carries a strong ``ETag``: a SHA-256 of the JSON
  representation the caller gets (canonical: sorted keys, no spaces; :func:`etag_of`), so it
  changes whenever any field of the answer does (a post's embedded author name too).
- ``GET`` with ``If-None-Match`` naming the current tag (or ``*``) answers ``304 Not Modified``
  with the tag and no body (weak comparison, as RFC 9110 section 13.1.2 says for
  ``If-None-Match``: ``"x"`` and ``W/"x"`` both match).
- ``PUT``/``PATCH``/``DELETE`` with ``If-Match``: the row is locked (``SELECT ... FOR UPDATE`` in a
  transaction on its primary) and its current representation's tag compared (``*`` matches any
  existing row) *before* the write, inside the same transaction: a changed resource is a ``412``
  problem+json and nothing is written. Two clients that both read version A and both send
  ``If-Match: A`` get one 200 and one 412; never two 200s.
- Compression and ``If-Match``: a compressed answer (nginx's gzip, or
  :class:`api.middleware.CompressionMiddleware`) carries the tag weakened, ``W/"x"``, as RFC 9110
  section 8.8.1 asks when the bytes change with the content coding. The tag is a hash of the JSON
  *content*, which no content coding changes, so ``If-Match`` takes back the ``W/`` form of the
  service's own tag: the opaque part must equal the current tag exactly (``W/"x"`` matches the
  current ``"x"``, never an older ``"y"``). This is strong comparison on the opaque tag, with the
  weak marker the transport added ignored; a client behind a compressor can make a conditional
  write at all, and a changed resource is still a 412 (docs/api.md, "Compression and ETags").
- ``REQUIRE_IF_MATCH=1``: those writes without ``If-Match`` are a ``428`` problem+json.

Views keep their bodies: ``respond(request, data)`` for reads and write answers, and
``guard(request, Model, pk, represent)`` around an update or delete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import router, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.renderers import dumps
from core.errors import NotFound


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The resource changed since the version named by If-Match; read it again and retry."
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = "This write needs an If-Match header naming the ETag of the version it changes."
    default_code = "precondition_required"


def etag_of(data: Any) -> str:
    """The strong entity tag of a representation (a quoted string): the SHA-256 of its canonical
    JSON, written by orjson (api.renderers.dumps with sorted keys), or by ``json`` for what orjson
    refuses (an integer beyond 64 bits)."""
    try:
        body = dumps(data, orjson.OPT_SORT_KEYS)
    except TypeError:
        body = json.dumps(
            data, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    return '"' + hashlib.sha256(body).hexdigest()[:40] + '"'


def _tags(header: str) -> list[str]:
    return [part.strip() for part in header.split(",") if part.strip()]


def _none_match(header: str, tag: str) -> bool:
    """True when ``If-None-Match`` matches ``tag`` (weak comparison: ``W/`` prefixes ignored)."""
    opaque = tag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == opaque for t in _tags(header))


def _match(header: str, tag: str) -> bool:
    """True when ``If-Match`` matches ``tag``, the service's own strong tag: ``*``, the tag itself,
    or the tag as a compressor weakened it (``W/"x"`` for ``"x"``; module doc). The opaque parts
    are compared exactly."""
    return any(t == "*" or t.removeprefix("W/") == tag for t in _tags(header))


def respond(request: Request, data: Any, *, status_code: int = 200, location: str | None = None) -> Response:
    """``data`` with its ``ETag``; for a GET/HEAD whose ``If-None-Match`` matches, a bodiless 304.
    ``location``: the created resource's path, sent as ``Location`` (every 201 carries one)."""
    tag = etag_of(data)
    header = request.headers.get("If-None-Match")
    if header and request.method in ("GET", "HEAD") and status_code == 200 and _none_match(header, tag):
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": tag})
    headers = {"ETag": tag}
    if location:
        headers["Location"] = location
    return Response(data, status=status_code, headers=headers)


def require_if_match(request: Request) -> str | None:
    """The ``If-Match`` header, or None; a 428 when it is missing and ``REQUIRE_IF_MATCH`` is on."""
    header = request.headers.get("If-Match")
    if not header and settings.REQUIRE_IF_MATCH:
        raise PreconditionRequired()
    return header or None


def check(header: str | None, current: Any) -> None:
    """412 when ``header`` (an ``If-Match`` value) does not match the representation ``current``."""
    if header is not None and not _match(header, etag_of(current)):
        raise PreconditionFailed()


@contextlib.contextmanager
def guard(request: Request, model: Any, pk: Any, represent: Callable[[Any], Any], what: str) -> Iterator[Any]:
    """Around an update or delete of ``model`` row ``pk``: yields the row, locked ``FOR UPDATE`` in
    a transaction on its primary when ``If-Match`` was sent (and compared: 412 on a mismatch); the
    caller's write inside the block commits with that transaction. 404 when the row does not exist."""
    header = require_if_match(request)
    db = router.db_for_write(model)
    with transaction.atomic(using=db):
        rows = model.objects.using(db).filter(pk=pk)
        if header is not None:
            rows = rows.select_for_update()
        obj = rows.first()
        if obj is None:
            raise NotFound(what, pk)
        check(header, represent(obj))
        yield obj


# --- OpenAPI ------------------------------------------------------------------------------------
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="An ETag from an earlier answer (or `*`): a 304 with no body when the resource is unchanged.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag of the version this write changes (or `*`): a 412 when the resource changed since. "
    "Required (428 without it) when the server runs with `REQUIRE_IF_MATCH=1`.",
)


def etag_header(*statuses: int) -> OpenApiParameter:
    """The ``ETag`` response header, documented on the given answers (default 200)."""
    return OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=list(statuses or (200,)),
        description='Entity tag of this representation, strong (`"..."`), or weak (`W/"..."`) when the answer '
        "was compressed; send it back as it came in `If-Match` / `If-None-Match`.",
    )


NOT_MODIFIED = {
    304: OpenApiResponse(description="Not modified: the `If-None-Match` tag is current (no body).", response=None)
}
PRECONDITION_RESPONSES = {
    (412, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        ProblemSerializer, description="Precondition failed: the resource changed since the `If-Match` version."
    ),
    (428, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        ProblemSerializer, description="Precondition required: `If-Match` is missing and the server requires it."
    ),
}

#: For a read: ``parameters=READ_PARAMETERS``, ``responses={200: ..., **NOT_MODIFIED}``.
READ_PARAMETERS = [IF_NONE_MATCH, etag_header(200)]
#: For an update: ``parameters=WRITE_PARAMETERS``, ``responses={200: ..., **PRECONDITION_RESPONSES}``.
WRITE_PARAMETERS = [IF_MATCH, etag_header(200)]
#: For a delete.
DELETE_PARAMETERS = [IF_MATCH]
