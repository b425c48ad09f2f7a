"""``/api/v1/analytics/events/``: events on analytics_db, with ``batch/`` and ``summary/``."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api import permissions as who
from api.filters import EventFilterSet, FilterBackend
from api.idempotency import IDEMPOTENCY_PARAMETER, IDEMPOTENCY_RESPONSES, idempotent
from api.pagination import TimestampCursorPagination
from api.serializers.analytics import (
    EventBatchInputSerializer,
    EventBatchOutputSerializer,
    EventInputSerializer,
    EventOutputSerializer,
    EventSummaryOutputSerializer,
    EventSummaryQuerySerializer,
    fast_batch_events,
)
from api.views.base import ResourceViewSet
from core.analytics import selectors, services
from core.analytics.models import AnalyticsEvent

TAG = "analytics"


@extend_schema_view(
    list=extend_schema(
        summary="List events",
        description="Newest first, paged by a cursor on `timestamp` (no `count`). "
        "Filters `event_type`, `user_id`, `since`, `until`.",
        responses={200: EventOutputSerializer(many=True)},
    ),
    retrieve=extend_schema(summary="Read an event", responses={200: EventOutputSerializer}),
    create=extend_schema(
        summary="Record an event",
        description="Honours `Idempotency-Key`.",
        request=EventInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: EventOutputSerializer, **IDEMPOTENCY_RESPONSES},
    ),
)
@extend_schema(tags=[TAG])
class EventViewSet(ResourceViewSet):
    """Analytics events (analytics_db)."""

    action_query_parameters = {"summary": ("user_id", "since", "until")}
    filter_backends = [FilterBackend]
    filterset_class = EventFilterSet
    pagination_class = TimestampCursorPagination
    serializer_class = EventOutputSerializer
    #: what OPTIONS describes each write with (api.metadata)
    input_serializers = {"create": EventInputSerializer, "batch": EventBatchInputSerializer}
    resource_name = "event"
    list_name = "events"  # its maximal page (api.limits)
    write_scope = "events:write"  # api.permissions; a bound token: its own user_id or none
    #: the setting that caps request bodies (api.parsers); the batch action names its own
    max_body_setting = "MAX_BODY_BYTES"

    def get_queryset(self) -> QuerySet[AnalyticsEvent]:
        return selectors.event_list()

    def list(self, request: Request) -> Response:
        events = selectors.event_rows(self.filter_queryset(self.get_queryset()))
        archived = selectors.archived_event_lists()
        if archived:  # months on their own databases follow in the same cursor order
            events = selectors.MonthChain(
                events, [(month, selectors.event_rows(self.filter_queryset(qs))) for month, qs in archived]
            )
        page = self.paginate_queryset(events)
        return self.get_paginated_response(EventOutputSerializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(EventOutputSerializer(selectors.event_get(event_id=self.object_id())).data)

    @idempotent
    def create(self, request: Request) -> Response:
        data = EventInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        who.EventOwnership.check(request, [data.validated_data.get("user_id")])
        event = services.event_create(**data.validated_data)
        location = reverse("analytics-event-detail", kwargs={"pk": event.pk})
        return Response(
            EventOutputSerializer(event).data, status=status.HTTP_201_CREATED, headers={"Location": location}
        )

    @extend_schema(
        summary="Record many events, all or none",
        description='Body `{"events": [...]}` with 1 to `EVENT_BATCH_MAX_EVENTS` events (10,000 by default). '
        "Every event is validated first; on any error nothing is written and `errors[]` names each bad field as "
        "`events[<index>].<field>`. Written in bulk inside one transaction. Honours `Idempotency-Key`. "
        "The body may be up to BATCH_MAX_BODY_BYTES (32 MB by default; larger is a 413).",
        request=EventBatchInputSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: EventBatchOutputSerializer, **IDEMPOTENCY_RESPONSES},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="batch",
        pagination_class=None,
        filter_backends=[],
        max_body_setting="BATCH_MAX_BODY_BYTES",
    )
    @idempotent
    def batch(self, request: Request) -> Response:
        events = fast_batch_events(request.data)
        if events is None:  # something unusual: the serializer validates and words the errors
            data = EventBatchInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            events = data.validated_data["events"]
        who.EventOwnership.check(request, (event.get("user_id") for event in events))
        created = services.event_batch_create(events=events)
        # Many events, no single one: Location names the collection they are read from.
        return Response(
            EventBatchOutputSerializer({"created": created}).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": reverse("analytics-event-list")},
        )

    @extend_schema(
        summary="Count events by type",
        description="Counts grouped by `event_type`, optionally for one `user_id` and a time window.",
        parameters=[EventSummaryQuerySerializer],
        responses={200: EventSummaryOutputSerializer},
    )
    @action(detail=False, methods=["get"], url_path="summary", pagination_class=None, filter_backends=[])
    def summary(self, request: Request) -> Response:
        query = EventSummaryQuerySerializer(data=request.query_params)
        empty = sorted(name for name in query.fields if request.query_params.get(name) == "")
        if empty:
            raise ValidationError(
                {name: ["A value is required when the parameter is given."] for name in empty}, code="blank"
            )
        query.is_valid(raise_exception=True)
        counts = selectors.event_summary(**query.validated_data)
        body = {"counts": counts, "total": sum(int(c["count"]) for c in counts)}
        return Response(EventSummaryOutputSerializer(body).data)
