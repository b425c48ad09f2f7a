"""``api.negotiation.ContentNegotiation`` answers every request as DRF's own negotiation does: the
common requests through its short cut, the rest through DRF (406s included)."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer, StaticHTMLRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from api.negotiation import ContentNegotiation

RENDERER_LISTS = [
    [JSONRenderer()],
    [JSONRenderer(), BrowsableAPIRenderer()],
    [StaticHTMLRenderer(), JSONRenderer()],
]
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "text/html",
    "application/json; indent=4",
    "application/xml",
    "text/html, */*;q=0.1",
    "application/*",
]
QUERIES = ["", "format=json", "format=api", "page=2", "format=xml"]


def _answer(negotiation, request, renderers, suffix):
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except (exceptions.NotAcceptable, exceptions.NotFound, Http404) as exc:
        return type(exc).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("renderers", RENDERER_LISTS, ids=lambda r: "+".join(type(x).__name__ for x in r))
@pytest.mark.parametrize("suffix", [None, "json"])
def test_same_answer_as_drf(renderers, suffix, monkeypatch):
    factory = APIRequestFactory()
    drf_select = DefaultContentNegotiation.select_renderer
    handed_to_drf = []

    def counted(self, *args, **kwargs):
        handed_to_drf.append(args)
        return drf_select(self, *args, **kwargs)

    monkeypatch.setattr(DefaultContentNegotiation, "select_renderer", counted)
    cases = 0
    for accept in ACCEPTS:
        for query in QUERIES:
            extra = {} if accept is None else {"HTTP_ACCEPT": accept}
            request = Request(factory.get(f"/api/v1/users/?{query}", **extra))
            ours = _answer(ContentNegotiation(), request, renderers, suffix)
            theirs = Request(factory.get(f"/api/v1/users/?{query}", **extra))
            assert ours == _answer(DefaultContentNegotiation(), theirs, renderers, suffix), (accept, query)
            cases += 1
    # Every case ran DRF's negotiation once for the comparison; ours handed the rest to it too.
    shortcut = 2 * cases - len(handed_to_drf)
    if suffix is None:
        assert shortcut == 3 * 2  # (no Accept, */*, the first's type) x (queries without a format)
    else:
        assert shortcut == 0
