"""Staff-only view of the databases: ``GET /api/v1/admin/databases/`` and ``.../slow-queries/``."""

from __future__ import annotations

from dataclasses import asdict

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.problems import PROBLEM_CONTENT_TYPE, ProblemSerializer
from api.query_params import QueryCheckedAPIView
from api.serializers.fields import QueryIntegerField
from core.services import database_admin


# --- serializers -------------------------------------------------------------------------------
class AdminDatabasePoolSerializer(serializers.Serializer):
    min_size = serializers.IntegerField(required=False)
    max_size = serializers.IntegerField(required=False)
    timeout = serializers.FloatField(required=False)
    max_idle = serializers.FloatField(required=False)


class AdminDatabaseConnectionSerializer(serializers.Serializer):
    conn_max_age = serializers.IntegerField(allow_null=True, help_text="seconds a connection is kept (0: per request)")
    conn_health_checks = serializers.BooleanField()
    options = serializers.DictField(help_text="engine options without secrets (connect_timeout, isolation_level, ...)")
    pool = AdminDatabasePoolSerializer(allow_null=True, help_text="psycopg pool settings; null when not pooled")


class AdminDatabaseSerializer(serializers.Serializer):
    alias = serializers.CharField()
    primary = serializers.CharField(help_text="the primary alias (itself for a primary)")
    role = serializers.ChoiceField(choices=["primary", "replica"])
    vendor = serializers.CharField(help_text="postgresql, mysql or sqlite")
    host = serializers.CharField(allow_null=True)
    port = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(help_text="database name (file name for SQLite)")
    usable = serializers.BooleanField(help_text="SELECT 1 answered")
    size_bytes = serializers.IntegerField(
        allow_null=True,
        help_text="pg_database_size on PostgreSQL, data+index length from information_schema on MariaDB/MySQL, "
        "the file size on SQLite; null when the database is down",
    )
    error = serializers.CharField(allow_blank=True, help_text="why it is not usable (empty when usable)")
    connection = AdminDatabaseConnectionSerializer()


class AdminDatabaseListSerializer(serializers.Serializer):
    databases = AdminDatabaseSerializer(many=True)


class AdminSlowQuerySerializer(serializers.Serializer):
    query = serializers.CharField(help_text="normalised statement text")
    calls = serializers.IntegerField()
    total_exec_time_ms = serializers.FloatField()
    mean_exec_time_ms = serializers.FloatField()
    rows = serializers.IntegerField()


class AdminSlowQuerySourceSerializer(serializers.Serializer):
    alias = serializers.CharField()
    vendor = serializers.CharField()
    available = serializers.BooleanField(help_text="false when pg_stat_statements cannot be read here")
    detail = serializers.CharField(help_text="where the figures come from, or why they are not available")
    queries = AdminSlowQuerySerializer(many=True)


class AdminSlowQueryListSerializer(serializers.Serializer):
    available = serializers.BooleanField(help_text="true when at least one alias has pg_stat_statements")
    sources = AdminSlowQuerySourceSerializer(many=True)


class AdminSlowQueryParamsSerializer(serializers.Serializer):
    alias = serializers.ChoiceField(choices=[], required=False)
    limit = QueryIntegerField(min_value=1, max_value=200, default=20)
    order = serializers.ChoiceField(choices=sorted(database_admin.SLOW_ORDER), default="mean")

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["alias"].choices = list(settings.DATABASES)


_ERRORS = {
    (401, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="No or bad token."),
    (403, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="Not a staff account."),
}


# --- views -------------------------------------------------------------------------------------
class AdminDatabaseListView(QueryCheckedAPIView):
    read_scope = "admin"  # api.permissions

    @extend_schema(
        operation_id="admin_databases_list",
        summary="Every database alias: where, whether it answers, size, connection settings",
        description="Staff only. Never shows a password. A database that is down is listed with usable=false.",
        responses={200: AdminDatabaseListSerializer, **_ERRORS},
        tags=["admin"],
    )
    def get(self, request: Request) -> Response:
        overview = [asdict(info) for info in database_admin.databases_overview()]
        return Response(AdminDatabaseListSerializer({"databases": overview}).data)


class AdminSlowQueryView(QueryCheckedAPIView):
    read_scope = "admin"  # api.permissions
    query_parameters = ("alias", "limit", "order")

    @extend_schema(
        operation_id="admin_databases_slow_queries",
        summary="Slowest statements per database, from pg_stat_statements",
        description=(
            "Staff only. PostgreSQL aliases with the pg_stat_statements extension report their statements "
            "(PostgreSQL 13+ columns total_exec_time, mean_exec_time, calls); the others answer available=false "
            "with the reason (not PostgreSQL, extension not installed, library not preloaded)."
        ),
        parameters=[
            OpenApiParameter("alias", str, description="only this alias"),
            OpenApiParameter("limit", int, description="statements per alias (1-200, default 20)"),
            OpenApiParameter(
                "order", str, enum=sorted(database_admin.SLOW_ORDER), description="sort key, descending (default mean)"
            ),
        ],
        responses={
            200: AdminSlowQueryListSerializer,
            (400, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                ProblemSerializer, description="Unknown alias, bad limit or order."
            ),
            **_ERRORS,
        },
        tags=["admin"],
    )
    def get(self, request: Request) -> Response:
        params = AdminSlowQueryParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        chosen = params.validated_data.get("alias")
        targets = [chosen] if chosen else database_admin.slow_query_aliases()
        sources = [
            asdict(
                database_admin.slow_queries(
                    alias, limit=params.validated_data["limit"], order=params.validated_data["order"]
                )
            )
            for alias in targets
        ]
        body = {"available": any(s["available"] for s in sources), "sources": sources}
        return Response(AdminSlowQueryListSerializer(body).data)
