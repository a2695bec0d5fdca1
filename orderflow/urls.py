"""The wiring: every app's URLs, health, schema and docs."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from orderflow.core import health
from orderflow.observability import exposition

handler400 = "orderflow.core.errors.handler400"
handler403 = "orderflow.core.errors.handler403"
handler404 = "orderflow.core.errors.handler404"
handler500 = "orderflow.core.errors.handler500"

urlpatterns = [
    path("", RedirectView.as_view(url="/dashboard/", permanent=False), name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", exposition.metrics, name="metrics"),  # Prometheus, behind METRICS_TOKEN
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    # The browsable API's log in / log out links (Django's login view: django-axes counts failures).
    path("api-auth/", include("rest_framework.urls")),
    path("api/v1/", include("orderflow.core.urls")),
    path("api/v1/", include("inventory.urls")),
    path("api/v1/", include("orders.urls")),
    path("api/v1/", include("payments.urls")),
    path("api/v1/", include("fulfillment.urls")),
    path("api/v1/", include("alerts.urls")),
    path("api/v1/", include("dashboard.urls")),
    path("", include("orders.public_urls")),
    path("", include("payments.public_urls")),
    path("dashboard/", include("dashboard.page_urls")),
]
