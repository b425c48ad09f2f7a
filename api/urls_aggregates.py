"""URLs of the aggregates area (see api/urls.py)."""

from django.urls import path, register_converter

from api import aggregates
from api.query_params import ascii_int

BIGINT_MAX = 2**63 - 1


class IdConverter:
    """A path id: ASCII digits naming 1 to 2**63-1. Anything else matches no URL (a 404 that asks
    no database); Django's ``int`` would hand a 30-digit number to the databases."""

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        number = ascii_int(value)
        if number is None or not 1 <= number <= BIGINT_MAX:
            raise ValueError(value)
        return number

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("users/activity/", aggregates.UsersActivityView.as_view(), name="users-activity"),
    path("users/<id:user_id>/dashboard/", aggregates.UserDashboardView.as_view(), name="user-dashboard"),
    path("users/<id:user_id>/stats/", aggregates.UserStatsView.as_view(), name="user-stats"),
    path("stats/", aggregates.StatsView.as_view(), name="stats"),
    path("reports/new-user-activity/", aggregates.NewUserActivityReportView.as_view(), name="report-new-user-activity"),
]
