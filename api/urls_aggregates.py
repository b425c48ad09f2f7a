"""URLs of the aggregates area (see api/urls.py)."""

from django.urls import path

from api import aggregates

urlpatterns = [
    path("users/activity/", aggregates.UsersActivityView.as_view(), name="users-activity"),
    path("users/<int:user_id>/dashboard/", aggregates.UserDashboardView.as_view(), name="user-dashboard"),
    path("users/<int:user_id>/stats/", aggregates.UserStatsView.as_view(), name="user-stats"),
    path("stats/", aggregates.StatsView.as_view(), name="stats"),
    path("reports/new-user-activity/", aggregates.NewUserActivityReportView.as_view(), name="report-new-user-activity"),
]
