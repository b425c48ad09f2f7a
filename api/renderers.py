"""JSON answers written by orjson: DRF's ``JSONRenderer`` with its encoding done in C.

Every answer of the API is JSON (``DEFAULT_RENDERER_CLASSES``), so the encoder is on the path of
every endpoint. DRF's renderer calls ``json.dumps`` with its own ``JSONEncoder`` class, which writes
a 50-row page of posts (about 24 KB) in about 250 us of CPU on the 2-core machine of the
benchmarks; orjson writes the same bytes in about 23 us, and a single user in 0.7 us instead of 7
(issue 12, bench/README.md, session 13).

What is written is what DRF's renderer writes with the project's settings (``COMPACT_JSON``, no
ASCII escaping, ``STRICT_JSON``), byte for byte, for everything the API answers:

- keys in the order of the data, ``,`` and ``:`` without spaces, UTF-8 text unescaped;
- dates, times, decimals, UUIDs, lazy strings, query sets and anything else orjson does not write
  itself go to DRF's own encoder (``rest_framework.utils.encoders.JSONEncoder.default``), so a
  datetime is still ``2026-11-30T05:13:08.233000Z`` (orjson's own format would differ);
- U+2028 and U+2029 are escaped, as DRF escapes them (JavaScript reads them as line ends);
- a request for indentation (``Accept: application/json; indent=4``), an integer beyond 64 bits or
  anything orjson refuses is written by DRF's renderer, as before.

Two differences, both at the edges: a float below 0.0001 may be written in another notation of
the same number (``0.00001`` and ``1e-7`` where ``json`` writes ``1e-05`` and ``1e-07``; one
random float in twelve of magnitudes 1e-30 to 1e36), and a NaN or an infinity is written as
``null`` where DRF's strict renderer raised (a 500). ``tests/api/test_renderers.py`` compares the
two renderers over every kind of value and over real answers of the API.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

#: orjson leaves these to ``default`` (DRF's encoder), so they are written as DRF writes them.
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
_encoder = JSONEncoder()
LINE_SEPARATOR, PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()


def dumps(data: Any, option: int = 0) -> bytes:
    """``data`` as compact UTF-8 JSON, what DRF's encoder writes (module doc); raises
    ``orjson.JSONEncodeError`` (a ``TypeError``) for what orjson cannot write."""
    return orjson.dumps(data, default=_encoder.default, option=OPTIONS | option)


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        indent_asked = (accepted_media_type and ";" in accepted_media_type) or (
            renderer_context and renderer_context.get("indent") is not None
        )
        if (
            indent_asked
            or not self.compact
            or self.ensure_ascii
            or not self.strict
            or self.encoder_class is not JSONEncoder
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = dumps(data)
        except TypeError:  # an integer beyond 64 bits, a non-UTF-8 string, a type nobody writes
            return super().render(data, accepted_media_type, renderer_context)
        if LINE_SEPARATOR in body or PARAGRAPH_SEPARATOR in body:
            body = body.replace(LINE_SEPARATOR, b"\\u2028").replace(PARAGRAPH_SEPARATOR, b"\\u2029")
        return body
