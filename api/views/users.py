"""``/api/v1/users/``: users on users_db. Writes need staff; destroy deletes everywhere (a saga)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from api import conditional
from api import permissions as who
from api.filters import FilterBackend, StrictOrderingFilter, StrictSearchFilter, UserFilterSet
from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.serializers.users import UserInputSerializer, UserOutputSerializer
from api.views.base import ResourceViewSet
from core.users import selectors, services
from core.users.models import User

TAG = "users"


@extend_schema_view(
    list=extend_schema(
        summary="List users",
        description="Page-numbered. Filters `username` (exact), `email` (case-insensitive; needs `pii:read`), "
        "`created_after`, `created_before`; `?search=` on username, email and names (needs `pii:read`); "
        "`?ordering=` (by `email`: needs `pii:read`). Emails and names are null without `pii:read`.",
        responses={200: UserOutputSerializer(many=True)},
    ),
    retrieve=extend_schema(
        summary="Read a user",
        parameters=conditional.READ_PARAMETERS,
        responses={200: UserOutputSerializer, **conditional.NOT_MODIFIED},
    ),
    create=extend_schema(
        summary="Create a user (staff)",
        request=UserInputSerializer,
        parameters=[conditional.etag_header(201)],
        responses={201: UserOutputSerializer},
    ),
    update=extend_schema(
        summary="Replace a user (staff)",
        request=UserInputSerializer,
        parameters=conditional.WRITE_PARAMETERS,
        responses={200: UserOutputSerializer, **conditional.PRECONDITION_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a user (staff)",
        request=UserInputSerializer,
        parameters=conditional.WRITE_PARAMETERS,
        responses={200: UserOutputSerializer, **conditional.PRECONDITION_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a user (staff)",
        description="Deletes the user everywhere, all or nothing (a saga): their cache entries on `cache_db`, "
        "posts and profile on `default`, their analytics events anonymised (`user_id` set to null) or "
        "deleted per the USER_DELETION_ANALYTICS setting, then the user on `users_db`. When a database "
        "fails, what was removed is restored and the answer names the failed `step` and its `alias`. "
        "Concurrent deletions of one user run one saga: the others answer 404. Writes naming the user "
        "(posts, events) are refused with a 400 from the moment the deletion begins.",
        parameters=conditional.DELETE_PARAMETERS,
        responses={
            **conditional.PRECONDITION_RESPONSES,
            204: OpenApiResponse(description="Deleted everywhere."),
            (409, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="A step hit a conflicting change; nothing was removed."
            ),
            (503, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer,
                description="A database was unavailable or locked; nothing was removed (`alias`, `step`). Retry later.",
            ),
        },
    ),
)
@extend_schema(tags=[TAG])
class UserViewSet(ResourceViewSet):
    """Users (users_db). Writes need a staff token."""

    write_scope = "users:write"  # api.permissions (who may do what)
    # Writing emails tells whether one is taken (a uniqueness 400): those writes need pii:read too.
    action_scopes = {
        "create": ("users:write", "pii:read"),
        "update": ("users:write", "pii:read"),
        "partial_update": ("users:write", "pii:read"),
    }
    filter_backends = [FilterBackend, StrictSearchFilter, StrictOrderingFilter]
    filterset_class = UserFilterSet
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering_fields = ["id", "username", "email", "created_at", "updated_at"]
    ordering = ["id"]
    serializer_class = UserOutputSerializer
    #: what OPTIONS describes each write with (api.metadata)
    input_serializers = {"create": UserInputSerializer, "update": UserInputSerializer}
    resource_name = "user"
    list_name = "users"  # its maximal page (api.limits)

    def get_queryset(self) -> QuerySet[User]:
        return selectors.user_list()

    def get_object(self) -> User:
        return selectors.user_get(user_id=self.object_id())

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(selectors.user_rows(self.filter_queryset(self.get_queryset())))
        return self.get_paginated_response(UserOutputSerializer(page, many=True, context={"request": request}).data)

    def _represent(self, user: User) -> dict:
        # What this caller sees (personal data nulled without pii:read): the ETag is of that answer.
        return UserOutputSerializer(user, context={"request": self.request}).data

    def retrieve(self, request: Request, pk: str) -> Response:
        return conditional.respond(request, self._represent(self.get_object()))

    def create(self, request: Request) -> Response:
        data = UserInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        who.require_unbound(request, "create users")
        user = services.user_create(**data.validated_data)
        return conditional.respond(
            request,
            self._represent(user),
            status_code=status.HTTP_201_CREATED,
            location=reverse("user-detail", kwargs={"pk": user.pk}),
        )

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        who.require_acting_for(request, self.object_id())
        self.check_sizes(UserInputSerializer)
        with conditional.guard(request, User, self.object_id(), self._represent, "user") as user:
            data = UserInputSerializer(data=request.data, partial=partial)
            data.is_valid(raise_exception=True)
            user = services.user_update(user=user, data=data.validated_data)
        return conditional.respond(request, self._represent(user))

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        who.require_acting_for(request, self.object_id())
        header = conditional.require_if_match(request)
        # Compared on the user row locked by the saga's first step, before anything is removed.
        precondition = (lambda user: conditional.check(header, self._represent(user))) if header else None
        services.user_delete(user_id=self.object_id(), precondition=precondition)
        return Response(status=status.HTTP_204_NO_CONTENT)
