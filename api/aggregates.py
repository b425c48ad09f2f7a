"""Aggregate endpoints: answers that join several databases (``core/services/``).

Views stay thin: validate the query string, call one service, answer with its plain dict. The
services build JSON-ready dicts (no model serializer on these hot paths); the serializers below
describe those dicts for the OpenAPI schema and validate the input.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from api import limits
from api import permissions as who
from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.query_params import QueryCheckedAPIView
from api.serializers.fields import QueryIntegerField
from core.services import activity, dashboard, reports, stats, user_stats

# --- schema of the answers ---------------------------------------------------------------------


class AggregatesUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_null=True, help_text=who.PII_NOTE)
    first_name = serializers.CharField(allow_null=True, help_text=who.PII_NOTE)
    last_name = serializers.CharField(allow_null=True, help_text=who.PII_NOTE)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AggregatesRecentPostSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AggregatesDashboardAnalyticsSerializer(serializers.Serializer):
    days = serializers.IntegerField(help_text="Length of the window, in days.")
    since = serializers.DateTimeField(help_text="Start of the window.")
    total = serializers.IntegerField()
    by_type = serializers.DictField(child=serializers.IntegerField(), help_text="event_type -> count")


class AggregatesCachedStatsSerializer(serializers.Serializer):
    post_count = serializers.IntegerField(allow_null=True)
    recent_activity = serializers.IntegerField(allow_null=True, help_text="Events in the last recent_activity_days.")
    recent_activity_days = serializers.IntegerField()
    computed_at = serializers.DateTimeField()


_SOURCES = serializers.DictField(
    child=serializers.FloatField(),
    help_text="Each source (database alias) the answer read, with the milliseconds it took.",
)
_DEGRADED = serializers.ListField(
    child=serializers.CharField(),
    help_text="Sources that failed or ran out of time; their parts of the answer are null.",
)


class AggregatesDashboardSerializer(serializers.Serializer):
    user = AggregatesUserSerializer()
    recent_posts = AggregatesRecentPostSerializer(many=True, allow_null=True, help_text="The 10 newest posts.")
    analytics = AggregatesDashboardAnalyticsSerializer(allow_null=True)
    cached_stats = AggregatesCachedStatsSerializer(allow_null=True, help_text="Null when nothing is cached.")
    sources = _SOURCES
    degraded = _DEGRADED


class AggregatesUserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_null=True, help_text=who.PII_NOTE)


class AggregatesUserStatsFiguresSerializer(serializers.Serializer):
    post_count = serializers.IntegerField(allow_null=True)
    recent_activity = serializers.IntegerField(allow_null=True, help_text="Events in the last recent_activity_days.")
    recent_activity_days = serializers.IntegerField()


class AggregatesUserStatsSerializer(serializers.Serializer):
    user = AggregatesUserBriefSerializer()
    stats = AggregatesUserStatsFiguresSerializer()
    computed_at = serializers.DateTimeField()
    cached = serializers.BooleanField()
    sources = _SOURCES
    degraded = _DEGRADED


class AggregatesTotalSerializer(serializers.Serializer):
    total = serializers.IntegerField()


class AggregatesPostTotalsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    authors = serializers.IntegerField(help_text="Distinct authors with at least one post.")


class AggregatesEventWindowsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    last_24h = serializers.IntegerField()
    last_7d = serializers.IntegerField()
    last_30d = serializers.IntegerField()


class AggregatesEventStatsSerializer(AggregatesEventWindowsSerializer):
    by_type = serializers.DictField(child=AggregatesEventWindowsSerializer(), help_text="event_type -> counts")


class AggregatesTopAuthorSerializer(serializers.Serializer):
    author_id = serializers.IntegerField()
    username = serializers.CharField(allow_null=True, help_text="Null when the user no longer exists.")
    post_count = serializers.IntegerField()


class AggregatesStatsSerializer(serializers.Serializer):
    generated_at = serializers.DateTimeField()
    cached = serializers.BooleanField()
    users = AggregatesTotalSerializer(allow_null=True)
    posts = AggregatesPostTotalsSerializer(allow_null=True)
    events = AggregatesEventStatsSerializer(allow_null=True)
    legacy_customers = AggregatesTotalSerializer(allow_null=True)
    top_authors = AggregatesTopAuthorSerializer(many=True, allow_null=True)
    rows = serializers.DictField(
        child=serializers.IntegerField(allow_null=True), help_text="alias -> rows of the table counted there"
    )
    sources = _SOURCES
    degraded = _DEGRADED


class AggregatesActivityPostSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()


class AggregatesActivityEventsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_type = serializers.DictField(child=serializers.IntegerField())


class AggregatesActivityUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_null=True, help_text=who.PII_NOTE)
    created_at = serializers.DateTimeField()
    post_count = serializers.IntegerField(allow_null=True)
    posts = AggregatesActivityPostSerializer(many=True, allow_null=True, help_text="The newest posts (at most 5).")
    events = AggregatesActivityEventsSerializer(allow_null=True, help_text="Events within the window.")


class AggregatesActivityPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    results = AggregatesActivityUserSerializer(many=True)
    sources = _SOURCES
    degraded = _DEGRADED


class AggregatesReportUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField(allow_null=True, help_text=who.PII_NOTE)
    created_at = serializers.DateTimeField()
    event_count = serializers.IntegerField(allow_null=True)


class AggregatesNewUserActivitySerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    total_users = serializers.IntegerField()
    total_events = serializers.IntegerField(allow_null=True)
    truncated = serializers.BooleanField(help_text="True when more users than listed joined in the window.")
    users = AggregatesReportUserSerializer(many=True)
    sources = _SOURCES
    degraded = _DEGRADED


# --- input -----------------------------------------------------------------------------------


class AggregatesActivityQuerySerializer(serializers.Serializer):
    days = QueryIntegerField(min_value=1, max_value=365, default=30)
    page = QueryIntegerField(min_value=1, max_value=1_000_000, default=1)
    page_size = QueryIntegerField(min_value=1, max_value=200, default=20)


# --- views -----------------------------------------------------------------------------------

_PROBLEM = OpenApiResponse(ProblemSerializer, description="Problem Details")
_USER_ID = OpenApiParameter("user_id", int, OpenApiParameter.PATH, description="The user's id on users_db.")
_ERRORS_USER = {
    (401, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="No or bad token."),
    (404, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="No such user."),
    (503, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="users_db is unreachable or too slow."),
}


class _AggregateView(QueryCheckedAPIView):
    """An aggregate answer: the query parameters it takes are its ``query_parameters`` (none by
    default); any other, or one given twice, is a 400 (as on the resource lists)."""


class UserDashboardView(_AggregateView):
    @extend_schema(
        operation_id="users_dashboard",
        summary="A user's dashboard across databases",
        description=(
            "The user (users_db), their 10 newest posts (default), their event counts of the last 30 "
            "days by type (analytics_db) and their cached stats, read concurrently with one query per "
            "database. A slow or failing source other than users_db is null and listed in `degraded`."
        ),
        tags=["aggregates"],
        parameters=[_USER_ID],
        responses={200: AggregatesDashboardSerializer, **_ERRORS_USER},
    )
    def get(self, request: Request, user_id: int) -> Response:
        answer = dict(dashboard.user_dashboard(user_id=user_id))
        answer["user"] = who.redact_user(request, dict(answer["user"]))
        return Response(answer)


class UserStatsView(_AggregateView):
    @extend_schema(
        operation_id="users_stats",
        summary="A user's stats (cached)",
        description=(
            "Post count and events of the last 7 days, kept in the cache until the user or one of "
            "their posts changes (or `USER_STATS_CACHE_SECONDS` pass). `cached` tells whether this "
            "answer came from the cache."
        ),
        tags=["aggregates"],
        parameters=[_USER_ID],
        responses={200: AggregatesUserStatsSerializer, **_ERRORS_USER},
    )
    def get(self, request: Request, user_id: int) -> Response:
        answer = dict(user_stats.user_stats(user_id=user_id))  # (may be the cached dict: redact a copy)
        answer["user"] = who.redact_user(request, dict(answer["user"]))
        return Response(answer)


class StatsView(_AggregateView):
    @extend_schema(
        operation_id="stats",
        summary="Cross-database figures (cached a few seconds)",
        description=(
            "Users, posts, events by type and for the last 24 h / 7 d / 30 d, legacy customers, the "
            "top 10 authors with their usernames and rows per alias. Cached for "
            "`STATS_CACHE_SECONDS`. A failing source is null and listed in `degraded`."
        ),
        tags=["aggregates"],
        responses={
            200: AggregatesStatsSerializer,
            (401, PROBLEM_CONTENT_TYPE): _ERRORS_USER[(401, PROBLEM_CONTENT_TYPE)],
        },
    )
    def get(self, request: Request) -> Response:
        return Response(stats.stats())


def _page_links(request: Request, page: int, page_size: int, count: int) -> tuple[str | None, str | None]:
    url = request.build_absolute_uri()
    following = replace_query_param(url, "page", page + 1) if page * page_size < count else None
    if page <= 1:
        previous = None
    elif page == 2:
        previous = remove_query_param(url, "page")
    else:
        previous = replace_query_param(url, "page", page - 1)
    return following, previous


class UsersActivityView(_AggregateView):
    query_parameters = ("days", "page", "page_size")

    @extend_schema(
        operation_id="users_activity",
        summary="Users who joined recently, with their posts and events",
        description=(
            "Users created in the last `days` days (newest first, paginated), each with their post "
            "count, newest posts and event counts within the window: one query per database."
        ),
        tags=["aggregates"],
        parameters=[AggregatesActivityQuerySerializer],
        responses={
            200: AggregatesActivityPageSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="Bad `days`, `page` or `page_size`."
            ),
            (401, PROBLEM_CONTENT_TYPE): _ERRORS_USER[(401, PROBLEM_CONTENT_TYPE)],
            (404, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="Page out of range."),
            (503, PROBLEM_CONTENT_TYPE): _ERRORS_USER[(503, PROBLEM_CONTENT_TYPE)],
        },
    )
    def get(self, request: Request) -> Response:
        query = AggregatesActivityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        answer = activity.recent_users_activity(days=params["days"], page=params["page"], page_size=params["page_size"])
        answer["results"] = [dict(user) for user in answer["results"]]
        who.redact_users(request, answer["results"])
        following, previous = _page_links(request, params["page"], params["page_size"], answer["count"])
        return Response({"count": answer["count"], "next": following, "previous": previous, **answer})


class NewUserActivityReportView(_AggregateView):
    @extend_schema(
        operation_id="reports_new_user_activity",
        summary="New users of the last 7 days and their event counts",
        description="Parameterised SQL on users_db, then on analytics_db for those users' events.",
        tags=["aggregates"],
        responses={
            200: AggregatesNewUserActivitySerializer,
            (401, PROBLEM_CONTENT_TYPE): _ERRORS_USER[(401, PROBLEM_CONTENT_TYPE)],
            (503, PROBLEM_CONTENT_TYPE): _ERRORS_USER[(503, PROBLEM_CONTENT_TYPE)],
        },
    )
    def get(self, request: Request) -> Response:
        # As many users as keep the answer within LIST_MAX_ANSWER_BYTES (api.limits).
        answer = dict(reports.new_user_activity(max_users=limits.figures("new_user_report")[1]))
        answer["users"] = [dict(user) for user in answer["users"]]
        who.redact_users(request, answer["users"])
        return Response(answer)
