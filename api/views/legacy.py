"""``/api/v1/legacy/customers/``: the legacy MySQL ``customers`` table.

Reads need ``read`` (or ``legacy:write``). A customer's name and email are personal data, as users'
emails and names are (api.permissions): null without ``pii:read``, and ``?search=`` (it covers
them) or ``?ordering=`` by them is a 403 naming ``pii:read``, as on users. Writes need staff, and
are refused (405 with ``Allow: GET, HEAD, OPTIONS``, and left out of the OpenAPI schema) unless
``LEGACY_ALLOW_WRITES`` is set.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from api import conditional
from api import permissions as who
from api.filters import StrictOrderingFilter, StrictSearchFilter
from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.serializers.legacy import LegacyCustomerInputSerializer, LegacyCustomerOutputSerializer
from api.views.base import ResourceViewSet
from core.legacy import selectors, services
from core.legacy.models import LegacyCustomer
from routers.primary import LegacyWriteForbidden

TAG = "legacy"
READ_ONLY = {
    (405, PROBLEM_CONTENT_TYPE): OpenApiResponse(
        ProblemSerializer, description="Writes to the legacy database are disabled (`LEGACY_ALLOW_WRITES` off)."
    )
}
#: The write operations are documented only when the server allows them (decided at import, from
#: the setting), so that the schema matches the ``Allow`` header and the 405s.
WRITES_DOCUMENTED = bool(settings.LEGACY_ALLOW_WRITES)
WRITE_NOTE = " Staff only, and only when the server allows legacy writes (`LEGACY_ALLOW_WRITES`); otherwise 405."


# A customer's name and email are personal data, as users' emails and names are: the users' rules
# (api.filters words them for users) hold here, in these two filters of this view.
class LegacySearchFilter(StrictSearchFilter):
    """``?search=`` covers names and emails, so it would tell who is a customer: it needs
    ``pii:read`` (403 before the term is looked at, as on users)."""

    search_description = StrictSearchFilter.search_description + " Needs the `pii:read` scope (403 otherwise)."

    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        if request.query_params.get(self.search_param):
            who.require_pii_read(request, "Searching legacy customers (on names and emails)")
        return super().filter_queryset(request, queryset, view)


class LegacyOrderingFilter(StrictOrderingFilter):
    """An order tells hidden values apart: ordering by a name or an email needs ``pii:read`` (403
    once the fields are known to be valid, as on users)."""

    ordering_description = (
        StrictOrderingFilter.ordering_description
        + " Ordering by `customer_name` or `customer_email` needs the `pii:read` scope (403 otherwise)."
    )

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> Any:
        terms = super().get_ordering(request, queryset, view)
        if request.query_params.get(self.ordering_param):
            for term in terms:
                if term.lstrip("-") in who.LEGACY_PII_FIELDS:
                    who.require_pii_read(request, f"Ordering by `{term.lstrip('-')}`")
        return terms


@extend_schema_view(
    list=extend_schema(
        summary="List legacy customers",
        description="Page-numbered. `?search=` on name and email (needs `pii:read`); `?ordering=` (by "
        "`customer_name` or `customer_email`: needs `pii:read`). Names and emails are null without `pii:read`.",
        responses={200: LegacyCustomerOutputSerializer(many=True)},
    ),
    retrieve=extend_schema(
        summary="Read a legacy customer",
        parameters=conditional.READ_PARAMETERS,
        responses={200: LegacyCustomerOutputSerializer, **conditional.NOT_MODIFIED},
    ),
    create=extend_schema(
        exclude=not WRITES_DOCUMENTED,
        summary="Create a legacy customer",
        description=WRITE_NOTE.strip(),
        request=LegacyCustomerInputSerializer,
        responses={201: LegacyCustomerOutputSerializer, **READ_ONLY},
    ),
    update=extend_schema(
        exclude=not WRITES_DOCUMENTED,
        summary="Replace a legacy customer",
        description=WRITE_NOTE.strip(),
        request=LegacyCustomerInputSerializer,
        parameters=conditional.WRITE_PARAMETERS,
        responses={200: LegacyCustomerOutputSerializer, **READ_ONLY, **conditional.PRECONDITION_RESPONSES},
    ),
    partial_update=extend_schema(
        exclude=not WRITES_DOCUMENTED,
        summary="Change some fields of a legacy customer",
        description=WRITE_NOTE.strip(),
        request=LegacyCustomerInputSerializer,
        parameters=conditional.WRITE_PARAMETERS,
        responses={200: LegacyCustomerOutputSerializer, **READ_ONLY, **conditional.PRECONDITION_RESPONSES},
    ),
    destroy=extend_schema(
        exclude=not WRITES_DOCUMENTED,
        summary="Delete a legacy customer",
        description=WRITE_NOTE.strip(),
        parameters=conditional.DELETE_PARAMETERS,
        responses={204: OpenApiResponse(description="Deleted."), **READ_ONLY, **conditional.PRECONDITION_RESPONSES},
    ),
)
@extend_schema(tags=[TAG])
class LegacyCustomerViewSet(ResourceViewSet):
    """Customers of the legacy MySQL table (legacy_db)."""

    write_scope = "legacy:write"  # api.permissions (who may do what)
    filter_backends = [LegacySearchFilter, LegacyOrderingFilter]
    search_fields = ["customer_name", "customer_email"]
    ordering_fields = ["customer_id", "customer_name", "customer_email", "created_date"]
    ordering = ["customer_id"]
    serializer_class = LegacyCustomerOutputSerializer
    #: what OPTIONS describes each write with (api.metadata)
    input_serializers = {"create": LegacyCustomerInputSerializer, "update": LegacyCustomerInputSerializer}
    resource_name = "customer"
    list_name = "customers"  # its maximal page (api.limits)
    lookup_field = "customer_id"

    @property
    def allowed_methods(self) -> list[str]:
        # ``Allow`` tells the truth: only the reads while legacy writes are disabled.
        methods = super().allowed_methods
        if settings.LEGACY_ALLOW_WRITES:
            return methods
        return [m for m in methods if m in ("GET", "HEAD", "OPTIONS")]

    def check_permissions(self, request: Request) -> None:
        # While legacy writes are off the write methods do not exist here (the schema leaves them
        # out): any authenticated caller gets 405, before the staff check and before the body is
        # read (the routers would refuse the write anyway). No token is still a 401.
        if (
            request.method not in SAFE_METHODS
            and not settings.LEGACY_ALLOW_WRITES
            and request.user is not None
            and request.user.is_authenticated
        ):
            raise LegacyWriteForbidden(LegacyCustomer)
        super().check_permissions(request)
        if request.method not in SAFE_METHODS:
            who.require_unbound(request, "change legacy customers")

    def get_queryset(self) -> QuerySet[LegacyCustomer]:
        return selectors.customer_list()

    def get_object(self) -> LegacyCustomer:
        return selectors.customer_get(customer_id=self.object_id())

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.customer_rows(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(
            LegacyCustomerOutputSerializer(page, many=True, context={"request": request}).data
        )

    def _represent(self, customer: LegacyCustomer) -> dict:
        # What this caller sees (names and emails nulled without pii:read): the ETag is of that
        # answer, so it cannot confirm a guessed email either.
        return LegacyCustomerOutputSerializer(customer, context={"request": self.request}).data

    def retrieve(self, request: Request, customer_id: str) -> Response:
        return conditional.respond(request, self._represent(self.get_object()))

    def create(self, request: Request) -> Response:
        data = LegacyCustomerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = services.customer_create(**data.validated_data)
        return conditional.respond(
            request,
            self._represent(customer),
            status_code=status.HTTP_201_CREATED,
            location=reverse("legacy-customer-detail", kwargs={"customer_id": customer.pk}),
        )

    def update(self, request: Request, customer_id: str, partial: bool = False) -> Response:
        self.check_sizes(LegacyCustomerInputSerializer)
        with conditional.guard(request, LegacyCustomer, self.object_id(), self._represent, "customer") as customer:
            data = LegacyCustomerInputSerializer(data=request.data, partial=partial)
            data.is_valid(raise_exception=True)
            customer = services.customer_update(customer=customer, data=data.validated_data)
        return conditional.respond(request, self._represent(customer))

    def partial_update(self, request: Request, customer_id: str) -> Response:
        return self.update(request, customer_id, partial=True)

    def destroy(self, request: Request, customer_id: str) -> Response:
        with conditional.guard(request, LegacyCustomer, self.object_id(), self._represent, "customer") as customer:
            services.customer_delete(customer=customer)
        return Response(status=status.HTTP_204_NO_CONTENT)
