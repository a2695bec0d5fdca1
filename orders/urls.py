"""/api/v1 routes of the orders app."""

from django.urls import path

from . import api

urlpatterns = [
    path("orders", api.OrderListCreateView.as_view(), name="order-list"),
    path("orders/<str:order_id>", api.OrderDetailView.as_view(), name="order-detail"),
    path("orders/<str:order_id>/cancel", api.OrderCancelView.as_view(), name="order-cancel"),
    path("orders/<str:order_id>/events", api.OrderEventsView.as_view(), name="order-events"),
    path("orders/<str:order_id>/tracking", api.OrderTrackingView.as_view(), name="order-tracking"),
    path("track/<str:token>", api.PublicTrackingView.as_view(), name="track-api"),
    path("legacy/orders", api.LegacyOrderView.as_view(), name="legacy-order"),
]
