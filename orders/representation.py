"""The order as the API shows it. A module of its own because two callers need it: the views, and
`place_order`, which stores the exact 202 bytes on the idempotency record before COMMIT."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from .models import Order, OrderItem


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
    """The canonical JSON bytes of an order (what the idempotency record keeps): `OrderOut`'s
    output, byte for byte, built by `order_data` without a serializer (intake's hot path: DRF
    builds and deep-copies ~40 field objects per call)."""
    return JSONRenderer().render(order_data(order))


def _money(value: Decimal) -> str:
    return format(Decimal(value).quantize(_CENT), "f")


def _when(value: datetime | None) -> str | None:
    """DRF's DateTimeField: in the current time zone, ISO 8601, UTC written as Z."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_CENT = Decimal("0.01")


def order_data(order: Order) -> dict[str, Any]:
    """What `OrderOut(order).data` gives (tests/orders/test_representation.py holds them equal)."""
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        "payment_status": order.payment_status,
        "fulfillment_status": order.fulfillment_status,
        "customer": {"email": order.customer_email, "name": order.customer_name},
        "shipping_address": {
            "line1": order.shipping_line1,
            "line2": order.shipping_line2,
            "city": order.shipping_city,
            "postal_code": order.shipping_postal_code,
            "country": order.shipping_country,
        },
        "items": [
            {
                "sku": item.sku,
                "name": item.name,
                "quantity": item.quantity,
                "unit_price": _money(item.unit_price),
                "line_total": _money(item.line_total),
            }
            for item in order.items.all()
        ],
        "subtotal": _money(order.subtotal),
        "total": _money(order.total),
        "currency": order.currency,
        "payment": {
            "brand": order.card_brand,
            "last4": order.card_last4,
            "attempts": order.payment_attempts,
        },
        "risk": {"score": order.risk_score, "decision": order.risk_decision, "rules": order.risk_rules},
        "tracking_token": order.tracking_token,
        "tracking_url": tracking_url(order.tracking_token),
        "metadata": order.metadata,
        "created_at": _when(order.created_at),
        "updated_at": _when(order.updated_at),
    }
