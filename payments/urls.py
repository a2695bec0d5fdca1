"""/api/v1 routes of the payments app."""

from django.urls import path

from . import api

urlpatterns = [
    path("orders/<uuid:order_id>/approve", api.OrderApproveView.as_view(), name="order-approve"),
    path("orders/<uuid:order_id>/reject", api.OrderRejectView.as_view(), name="order-reject"),
    path("orders/<uuid:order_id>/retry-payment", api.OrderRetryPaymentView.as_view(), name="order-retry"),
    path("orders/<uuid:order_id>/payment", api.OrderPaymentView.as_view(), name="order-payment"),
    path("orders/<uuid:order_id>/refunds", api.OrderRefundsView.as_view(), name="order-refunds"),
]
