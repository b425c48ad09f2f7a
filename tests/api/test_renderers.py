"""``api.renderers.JSONRenderer`` writes what DRF's ``JSONRenderer`` writes, byte for byte: over a
table of values of every kind the API answers with, and over real answers of the API on the real
databases; the two documented differences (a float's notation, NaN) are checked as such."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import math
import uuid
import zoneinfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers as drf_renderers
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from api.conditional import etag_of
from api.renderers import JSONRenderer
from core import aliases
from tests.factories import api_client, make_event, make_post, make_user

OURS, DRFS = JSONRenderer(), drf_renderers.JSONRenderer()
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@dataclasses.dataclass
class Point:
    x: int


VALUES = {
    "empty dict": {},
    "empty list": [],
    "scalars": {"a": 1, "b": -2, "t": True, "f": False, "n": None, "s": "plain"},
    "64-bit edges": [2**63 - 1, -(2**63), 2**64 - 1],
    "floats": [0.1, 2.5, -1.0, 1234.5678, 0.0001, 123456789.125, 1e16, 1e22, 1e-300, 2.5e-10],
    "unicode": {"name": "Zoë 🚀 ✓ 日本", "quote": 'say "hi"\\n', "control": "a\tb\nc\x01"},
    "line separators": ["one\u2028two", "three\u2029four"],
    "nested": {"results": [{"id": 1, "tags": ["x", "y"], "author": {"id": 2, "username": "ada"}}], "count": 1},
    "tuples": (1, (2, 3), [4]),
    "int keys": {1: "one", 2: "two"},
    "mixed keys": {"a": 1, 3: "three", True: "yes", None: "none"},
    "datetimes": [
        dt.datetime(2026, 11, 30, 5, 13, 8, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, 5, 13, 8, 233451, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, 6, 13, 8, 1, tzinfo=PARIS),
        dt.datetime(2026, 11, 30, 5, 13, 8),
    ],
    "dates and times": [dt.date(2026, 11, 30), dt.time(5, 13, 8), dt.time(5, 13, 8, 5000), dt.timedelta(seconds=90)],
    "decimal": [decimal.Decimal("12.50"), decimal.Decimal("0.1")],
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "lazy string": {"detail": gettext_lazy("Not found.")},
    "bytes": b"raw bytes",
    "drf containers": ReturnDict({"id": 1, "items": ReturnList([1, 2], serializer=None)}, serializer=None),
}


@pytest.mark.parametrize("name", list(VALUES))
def test_the_same_bytes_as_drf(name: str) -> None:
    assert OURS.render(VALUES[name]) == DRFS.render(VALUES[name])


def test_an_iterator_is_written_as_drf_writes_it() -> None:
    # (not in the table: the first renderer would use it up)
    assert OURS.render({"gen": iter([1, 2])}) == DRFS.render({"gen": iter([1, 2])}) == b'{"gen":[1,2]}'


def test_beyond_64_bits_and_indent_are_drfs_own_answers() -> None:
    big = {"id": 2**70, "small": [-(2**65)]}
    assert OURS.render(big) == DRFS.render(big)
    nested = {"a": [1, {"b": "é"}]}
    for media_type in ("application/json; indent=4", "application/json; indent=2"):
        assert OURS.render(nested, media_type) == DRFS.render(nested, media_type)
    assert OURS.render(nested, None, {"indent": 3}) == DRFS.render(nested, None, {"indent": 3})
    assert OURS.render(None) == DRFS.render(None) == b""


def test_what_nobody_can_write_fails_as_in_drf() -> None:
    for value in ({"p": Point(1)}, {"o": object()}, {"s": "\ud800"}):
        with pytest.raises((TypeError, UnicodeEncodeError, ValueError)):
            DRFS.render(value)
        with pytest.raises((TypeError, UnicodeEncodeError, ValueError)):
            OURS.render(value)


def test_the_documented_differences() -> None:
    # The same number, in another notation.
    for number in (1e16, 1e-05, 1.5e-07, 1e300):
        ours, drfs = OURS.render([number]), DRFS.render([number])
        assert json.loads(ours) == json.loads(drfs) == [number]
    assert OURS.render([1e-05]) == b"[0.00001]" and DRFS.render([1e-05]) == b"[1e-05]"
    assert OURS.render([1e-07]) == b"[1e-7]" and DRFS.render([1e-07]) == b"[1e-07]"
    # Strict JSON: DRF refuses a NaN (a 500); orjson writes null.
    with pytest.raises(ValueError):
        DRFS.render({"v": math.nan})
    assert OURS.render({"v": math.nan, "w": math.inf}) == b'{"v":null,"w":null}'


def test_the_etag_is_of_the_canonical_json_and_stable() -> None:
    one = {"b": 1, "a": [1, 2], "when": dt.datetime(2026, 11, 30, tzinfo=dt.UTC)}
    same = {"a": [1, 2], "when": dt.datetime(2026, 11, 30, tzinfo=dt.UTC), "b": 1}
    assert etag_of(one) == etag_of(same)
    assert etag_of(one) != etag_of({**one, "b": 2})
    assert etag_of({"id": 2**70}) != etag_of({"id": 2**70 + 1})  # json writes what orjson cannot
    assert etag_of({"id": 2**70}).startswith('"') and len(etag_of({"id": 2**70})) == 42


@pytest.mark.django_db(databases=[aliases.DEFAULT, aliases.USERS, aliases.ANALYTICS, aliases.CACHE], transaction=True)
def test_real_answers_are_drfs_bytes() -> None:
    """Every JSON answer below, as sent, is what DRF's renderer writes for the same data."""
    author = make_user(username="zoë_🚀", first_name="Zoë")
    post = make_post(author=author, title="Ünïcode ✓ \u2028", content="x" * 300)
    make_event(event_type="click", user_id=author.pk, data={"nested": {"a": [1, 2.5, None, "é"]}, "b": True})
    client = api_client(staff=True)
    paths = [
        f"/api/v1/users/{author.pk}/",
        "/api/v1/users/?page_size=5",
        f"/api/v1/posts/{post.pk}/",
        "/api/v1/posts/?page_size=5",
        "/api/v1/analytics/events/?page_size=5",
        f"/api/v1/users/{author.pk}/dashboard/",
        "/api/v1/users/999999999/",  # a problem+json 404
        "/api/v1/users/?page_size=0",  # a problem+json 400
    ]
    for path in paths:
        response = client.get(path)
        assert response["Content-Type"].split(";")[0] in ("application/json", "application/problem+json"), path
        assert response.content == DRFS.render(response.data), path
        assert response.content == OURS.render(response.data), path
    assert "\\u2028" in client.get(f"/api/v1/posts/{post.pk}/").content.decode()
