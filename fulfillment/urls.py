"""/api/v1 routes of the fulfillment app."""

from django.urls import path

from . import api

urlpatterns = [
    path("fulfillments", api.FulfillmentListView.as_view(), name="fulfillment-list"),
    path("fulfillments/<int:pk>", api.FulfillmentDetailView.as_view(), name="fulfillment-detail"),
    path("fulfillments/<int:pk>/pick", api.FulfillmentPickView.as_view(), name="fulfillment-pick"),
    path("fulfillments/<int:pk>/pack", api.FulfillmentPackView.as_view(), name="fulfillment-pack"),
    path("fulfillments/<int:pk>/ready", api.FulfillmentReadyView.as_view(), name="fulfillment-ready"),
    path("fulfillments/<int:pk>/ship", api.FulfillmentShipView.as_view(), name="fulfillment-ship"),
    path("carriers/<str:carrier>/webhook", api.CarrierWebhookView.as_view(), name="carrier-webhook"),
]
