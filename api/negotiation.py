"""Content negotiation: DRF's, with its answer for the common request worked out without parsing.

Almost every request names no format and accepts anything (no ``Accept``, or ``*/*``) or exactly
the first renderer's media type (``application/json``); for those DRF's
``DefaultContentNegotiation`` parses the query string into a ``QueryDict`` and the ``Accept``
header into media types only to pick the first renderer with its own media type. This answers
those requests with that same pair directly and hands every other request to DRF unchanged (a
``format`` override, a suffix, any other ``Accept``: 406s included). In a request on the 2-core
machine of the benchmarks DRF's negotiation cost 27 us of CPU (issue 12, bench/README.md);
``tests/api/test_negotiation.py`` checks both give the same answer over a table of requests.
"""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: str | None = None) -> tuple[Any, str]:
        if renderers and not format_suffix:
            first = renderers[0]
            accept = request.META.get("HTTP_ACCEPT")
            override = self.settings.URL_FORMAT_OVERRIDE
            if (accept is None or accept == "*/*" or accept == first.media_type) and not (
                override and override in request.META.get("QUERY_STRING", "")
            ):
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
