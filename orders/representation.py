"""The order as the API shows it. A module of its own because two callers need it: the views, and
`place_order`, which stores the exact 202 bytes on the idempotency record before COMMIT."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from .models import Order, OrderItem
from .prebuilt import represented


def tracking_url(token: str) -> str:
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/track/{token}"


class CustomerOut(serializers.Serializer):
    email = serializers.EmailField(source="customer_email")
    name = serializers.CharField(source="customer_name")


class AddressOut(serializers.Serializer):
    line1 = serializers.CharField(source="shipping_line1")
    line2 = serializers.CharField(source="shipping_line2")
    city = serializers.CharField(source="shipping_city")
    postal_code = serializers.CharField(source="shipping_postal_code")
    country = serializers.CharField(source="shipping_country")


class PaymentOut(serializers.Serializer):
    brand = serializers.CharField(source="card_brand")
    last4 = serializers.CharField(source="card_last4")
    attempts = serializers.IntegerField(source="payment_attempts")


class RiskOut(serializers.Serializer):
    score = serializers.IntegerField(source="risk_score", allow_null=True)
    decision = serializers.CharField(source="risk_decision")
    rules = serializers.JSONField(source="risk_rules")


class OrderItemOut(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["sku", "name", "quantity", "unit_price", "line_total"]


class OrderOut(serializers.ModelSerializer):
    customer = CustomerOut(source="*")
    shipping_address = AddressOut(source="*")
    items = OrderItemOut(many=True)
    payment = PaymentOut(source="*")
    risk = RiskOut(source="*")
    tracking_url = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "payment_status",
            "fulfillment_status",
            "customer",
            "shipping_address",
            "items",
            "subtotal",
            "total",
            "currency",
            "payment",
            "risk",
            "tracking_token",
            "tracking_url",
            "metadata",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_tracking_url(self, order: Order) -> str:
        return tracking_url(order.tracking_token)


def attach_items(order: Order, items: list[OrderItem]) -> Order:
    """Put the lines just written into the order's prefetch cache, so rendering it costs no query."""
    qs = order.items.all()
    qs._result_cache = list(items)
    qs._prefetch_done = True
    order._prefetched_objects_cache = {"items": qs}
    return order


def order_json(order: Order) -> bytes:
    """The canonical JSON bytes of an order: what the 202 and the idempotency record carry —
    `OrderOut`'s output, rendered by its prebuilt instance (orders/prebuilt.py)."""
    return JSONRenderer().render(represented(OrderOut, order))
