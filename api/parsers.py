"""The API's JSON parser: a size cap, and every malformed body a 400.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is the largest body any endpoint takes; this parser
enforces the endpoint's own cap on the bytes it reads: a body larger than it is a 413 whether or
not ``Content-Length`` announced it. A view may name another
setting as its cap (``max_body_setting``; the events batch: ``BATCH_MAX_BODY_BYTES``). Nesting so deep that
Python's JSON decoder recurses out is a 400 like any other malformed JSON.
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
        try:
            parse_constant = json.strict_constant if self.strict else None
            return json.loads(text, parse_constant=parse_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
