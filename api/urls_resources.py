"""URLs of the resources area (see api/urls.py): one DRF viewset per kind of data."""

from rest_framework.routers import SimpleRouter

from api.views.analytics import EventViewSet
from api.views.legacy import LegacyCustomerViewSet
from api.views.posts import PostViewSet
from api.views.users import UserViewSet

router = SimpleRouter()
router.register("users", UserViewSet, basename="user")
router.register("posts", PostViewSet, basename="post")
router.register("analytics/events", EventViewSet, basename="analytics-event")
router.register("legacy/customers", LegacyCustomerViewSet, basename="legacy-customer")

urlpatterns = router.urls
