from django.contrib import admin
from django.urls import include, path

from api import health, metrics
from api.views.docs import RedocDocsView, SchemaView, SwaggerDocsView

urlpatterns = [
    path("health", health.liveness, name="health"),
    path("health/ready", health.readiness, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/v1/", include("api.urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SwaggerDocsView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocDocsView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
]

# Django's own error views answer Problem Details everywhere but the admin (see api/views/errors.py).
handler400 = "api.views.errors.bad_request"
handler403 = "api.views.errors.permission_denied"
handler404 = "api.views.errors.page_not_found"
handler500 = "api.views.errors.server_error"
