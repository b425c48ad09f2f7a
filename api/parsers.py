"""The API's JSON parser: a size cap, and every malformed body a 400.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is the largest body any endpoint takes; this parser
enforces the endpoint's own cap on the bytes it reads: a body larger than it is a 413 whether or
not ``Content-Length`` announced it. A view may name another
setting as its cap (``max_body_setting``; the events batch: ``BATCH_MAX_BODY_BYTES``).

Every body is held to ``JSON_MAX_DEPTH`` levels of arrays and objects (``{}`` and ``[1]`` are one
level, ``{"data": {"a": []}}`` three) before any view sees it: deeper is a 400 with the code
``too_deep``, on every endpoint alike. Nothing downstream (the serializers, the Idempotency-Key
fingerprint, the answer's encoder, the ETag) then walks a structure deeper than that. The check
costs two ``str.count`` calls for a body with at most that many brackets in all (every usual
single-resource body); a larger one is parsed and then walked level by level, without recursion.
A body so deep that Python's decoder recurses out before that is the same 400.

The decoder is Python's ``json`` (not orjson, though it is faster): it keeps integers beyond 64 bits
exact (a field then names them out of range) and reads lone surrogate escapes, which the fields
refuse by name, where orjson makes such integers floats and refuses the whole body.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from api.exceptions import PayloadTooLarge


def max_body_bytes(view: Any = None) -> int | None:
    """The body cap of ``view``: the setting named by its ``max_body_setting`` (the events batch
    uses ``BATCH_MAX_BODY_BYTES``), else ``MAX_BODY_BYTES``; never above Django's own cap."""
    name = getattr(view, "max_body_setting", None) or "MAX_BODY_BYTES"
    limits = [v for v in (getattr(settings, name, None), settings.DATA_UPLOAD_MAX_MEMORY_SIZE) if v is not None]
    return min(limits) if limits else None


TOO_DEEP = "too_deep"


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) holds arrays and objects more than ``limit`` levels deep;
    one level at a time, so that no depth makes it recurse."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) is dict or type(child) is list
        ]
    return False


def too_deep(limit: int) -> ParseError:
    return ParseError(
        f"JSON parse error - arrays and objects are nested more than {limit} levels deep (JSON_MAX_DEPTH).",
        code=TOO_DEEP,
    )


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        parser_context = parser_context or {}
        limit = max_body_bytes(parser_context.get("view"))
        request = parser_context.get("request")
        if limit is not None and request is not None:
            try:
                announced = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                announced = 0
            if announced > limit:
                raise PayloadTooLarge(f"The request body is {announced} bytes; at most {limit} are accepted.")
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}") from exc
        depth_limit = settings.JSON_MAX_DEPTH
        try:
            parse_constant = json.strict_constant if self.strict else None
            data = json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            raise too_deep(depth_limit) from exc
        # Fewer brackets in all than the limit cannot nest deeper than it: no walk for usual bodies.
        if text.count("[") + text.count("{") > depth_limit and nesting_exceeds(data, depth_limit):
            raise too_deep(depth_limit)
        return data
