"""How every endpoint reads its query string: one rule for numbers, one for repeats, one for names.

- **Numbers are ASCII digits** (:func:`ascii_int`): ``?page=2`` and ``?author_id=7``; a sign, a
  space, an underscore, a decimal point or a digit of another script (``+2``, `` 2``, ``1_0``,
  ``2.0``, ``２``, ``٣``) is a 400 naming the parameter, never read as the number Python's ``int()``
  would make of it. Path ids follow the same rule and are a 404 (``api.views.base``, ``api.urls``).
  The serializer fields (``api.serializers.fields``), the filters' form field
  (:class:`AsciiIntegerFormField`) and the paginations read numbers through it.
- **Each parameter at most once** (:func:`check_query_parameters`): no parameter of the API takes
  several values (``?ordering=`` takes a comma-separated list in one value), so ``?page=1&page=2``
  is a 400 ``duplicate_parameter`` naming it, instead of one of the two values winning silently.
- **Only the parameters the operation declares**: any other is a 400 ``unknown_parameter`` naming
  it and listing the accepted ones (``none`` for an operation that takes none).

Every ``/api/v1/`` view runs :func:`check_query_parameters` from its ``initial()`` with the names its
operation declares in the schema (:class:`QueryCheckedAPIView`, and ``ResourceViewSet`` for the
resources); ``tests/api/test_query_parameters.py`` walks every operation of
the schema with a repeated and an unknown parameter.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django import forms
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

#: Longest run of digits read as a number (2**63-1 has 19 digits; a little room for leading zeros).
MAX_DIGITS = 20


def ascii_int(raw: str) -> int | None:
    """The number ``raw`` writes in ASCII digits only (``"042"`` is 42), else None."""
    if not raw or len(raw) > MAX_DIGITS or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


class AsciiIntegerFormField(forms.IntegerField):
    """Django's form IntegerField (as django-filter's number filters use) reading ASCII digits only."""

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        if isinstance(value, str):
            number = ascii_int(value)
            if number is None:
                raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
            return number
        return super().to_python(value)


def handles_method(view: Any, request: Request) -> bool:
    """Whether ``view`` has a handler for the request's method: a method it does not take is
    DRF's 405 with ``Allow`` (answered after ``initial()``), whatever its query string says."""
    method = (request.method or "").lower()
    return method in view.http_method_names and hasattr(view, method)


def check_query_parameters(request: Request, accepted: Collection[str]) -> None:
    """A 400 for a parameter given more than once (``duplicate_parameter``) or not in ``accepted``
    (``unknown_parameter``), each naming its parameters (at most 20, names cut to 100 characters)."""
    params = request.query_params
    repeated = sorted(name for name, values in params.lists() if len(values) > 1)
    if repeated:
        raise ValidationError(
            {name[:100]: ["Given more than once; this parameter takes one value."] for name in repeated[:20]},
            code="duplicate_parameter",
        )
    unknown = sorted(name for name in params if name not in accepted)
    if unknown:
        allowed = ", ".join(sorted(accepted)) or "none"
        raise ValidationError(
            {name[:100]: [f"Unknown query parameter; this operation accepts: {allowed}."] for name in unknown[:20]},
            code="unknown_parameter",
        )


class QueryCheckedAPIView(APIView):
    """An APIView whose operation takes the query parameters in ``query_parameters`` (none unless
    declared), each at most once; checked after authentication, before the handler runs."""

    query_parameters: tuple[str, ...] = ()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if handles_method(self, request):
            check_query_parameters(request, self.query_parameters)
