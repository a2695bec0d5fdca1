"""/api/v1 routes of the alerts app: alerts and outgoing webhooks."""

from django.urls import path

from . import api

urlpatterns = [
    path("alerts", api.AlertListView.as_view(), name="alert-list"),
    path("alerts/<int:alert_id>/acknowledge", api.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve", api.AlertResolveView.as_view(), name="alert-resolve"),
    path("webhooks", api.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<uuid:endpoint_id>", api.WebhookDetailView.as_view(), name="webhook-detail"),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries",
        api.WebhookDeliveryListView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/<uuid:endpoint_id>/deliveries/<uuid:delivery_id>/redeliver",
        api.WebhookRedeliverView.as_view(),
        name="webhook-redeliver",
    ),
]
