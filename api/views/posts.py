"""``/api/v1/posts/``: posts on ``default``, each with its author from users_db."""

from __future__ import annotations

import contextlib

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from api import conditional
from api import permissions as who
from api.filters import FilterBackend, PostFilterSet, StrictOrderingFilter, StrictSearchFilter
from api.idempotency import IDEMPOTENCY_PARAMETER, IDEMPOTENCY_RESPONSES, idempotent
from api.serializers.posts import PostInputSerializer, PostOutputSerializer
from api.views.base import ResourceViewSet
from core.blog import selectors, services
from core.blog.models import Post
from routers.state import use_primary

TAG = "posts"


@extend_schema_view(
    list=extend_schema(
        summary="List posts",
        description="Newest first, page-numbered. Each post embeds `author: {id, username}` "
        "(one query to users_db per page). Filters `author_id`, `created_after`, `created_before`; "
        "`?search=` on the title and content (PostgreSQL: whole words, English stemming, every term "
        "must appear; SQLite: substrings); `?ordering=`.",
        responses={200: PostOutputSerializer(many=True)},
    ),
    retrieve=extend_schema(
        summary="Read a post",
        parameters=conditional.READ_PARAMETERS,
        responses={200: PostOutputSerializer, **conditional.NOT_MODIFIED},
    ),
    create=extend_schema(
        summary="Create a post",
        description="`author_id` must name an existing user on users_db (else a 400 on `author_id`). Honours `Idempotency-Key`.",
        request=PostInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER, conditional.etag_header(201)],
        responses={201: PostOutputSerializer, **IDEMPOTENCY_RESPONSES},
    ),
    update=extend_schema(
        summary="Replace a post",
        request=PostInputSerializer,
        parameters=conditional.WRITE_PARAMETERS,
        responses={200: PostOutputSerializer, **conditional.PRECONDITION_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a post",
        request=PostInputSerializer,
        parameters=conditional.WRITE_PARAMETERS,
        responses={200: PostOutputSerializer, **conditional.PRECONDITION_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a post",
        parameters=conditional.DELETE_PARAMETERS,
        responses={204: OpenApiResponse(description="Deleted."), **conditional.PRECONDITION_RESPONSES},
    ),
)
@extend_schema(tags=[TAG])
class PostViewSet(ResourceViewSet):
    """Blog posts (default), each embedding its author from users_db."""

    filter_backends = [FilterBackend, StrictSearchFilter, StrictOrderingFilter]
    filterset_class = PostFilterSet
    search_fields = ["title", "content"]  # what the search covers; ``search`` says how
    ordering_fields = ["id", "created_at", "updated_at", "title"]
    ordering = ["-created_at", "-id"]
    serializer_class = PostOutputSerializer
    #: what OPTIONS describes each write with (api.metadata)
    input_serializers = {"create": PostInputSerializer, "update": PostInputSerializer}
    resource_name = "post"
    list_name = "posts"  # its maximal page (api.limits)
    write_scope = "posts:write"  # api.permissions; a bound token: its own posts only
    permission_classes = [who.HasScope, who.PostOwnership]

    def get_queryset(self) -> QuerySet[Post]:
        return selectors.post_list()

    def search(self, queryset: QuerySet[Post], terms: list[str]) -> QuerySet[Post]:
        """``?search=`` (api.filters.StrictSearchFilter): full-text on PostgreSQL (the selector)."""
        return selectors.post_search(queryset=queryset, terms=terms)

    def get_object(self) -> Post:
        post = selectors.post_get(post_id=self.object_id())
        self.check_object_permissions(self.request, post)  # a bound token: writes to its own posts only
        return post

    def _out(self, post: Post, written: bool = False) -> dict:
        if written:
            # The answer to a write reads its author where the write checked it, the primary: a
            # replica failing (or lagging) then must not turn a stored post into a 503 (or a null
            # author) and a client's retry into a second post.
            with use_primary():
                selectors.posts_attach_authors([post])
        else:
            selectors.posts_attach_authors([post])
        return PostOutputSerializer(post).data

    def list(self, request: Request) -> Response:
        rows = self.paginate_queryset(selectors.post_rows(self.filter_queryset(self.get_queryset())))
        selectors.post_rows_attach_authors(rows)
        return self.get_paginated_response(PostOutputSerializer(rows, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return conditional.respond(request, self._out(self.get_object()))

    @idempotent
    def create(self, request: Request) -> Response:
        data = PostInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        who.require_acting_for(self.request, data.validated_data["author_id"])
        post = services.post_create(**data.validated_data)
        return conditional.respond(
            request,
            self._out(post, written=True),
            status_code=status.HTTP_201_CREATED,
            location=reverse("post-detail", kwargs={"pk": post.pk}),
        )

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        self.check_sizes(PostInputSerializer)
        with contextlib.ExitStack() as held:  # exits last: a new author's fence outlives the commit
            with conditional.guard(
                request, Post, self.object_id(), lambda p: self._out(p, written=True), "post"
            ) as post:
                self.check_object_permissions(request, post)  # a bound token: its own posts only
                data = PostInputSerializer(data=request.data, partial=partial)
                data.is_valid(raise_exception=True)
                if "author_id" in data.validated_data:
                    who.require_acting_for(request, data.validated_data["author_id"])  # no moving a post to another
                held.enter_context(services.post_author_fence(data.validated_data))
                post = services.post_update(post=post, data=data.validated_data)
        return conditional.respond(request, self._out(post, written=True))

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.update(request, pk, partial=True)

    def destroy(self, request: Request, pk: str) -> Response:
        with conditional.guard(request, Post, self.object_id(), lambda p: self._out(p, written=True), "post") as post:
            self.check_object_permissions(request, post)  # a bound token: its own posts only
            services.post_delete(post=post)
        return Response(status=status.HTTP_204_NO_CONTENT)
