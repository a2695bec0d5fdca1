"""Building paid orders and walking fulfillments, for the fulfillment tests.

Until the payment flow exists, a paid order is made directly (the state payments leaves it in:
status `paid`, payment `succeeded`) and `payment.processed` is emitted as payments will emit it."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Max

from fulfillment import delivery, services
from fulfillment.models import Fulfillment, Shipment
from orders.models import Order, OrderItem


def make_paid_order(store, *lines: tuple[str, int], price: str = "10.00") -> Order:
    lines = lines or (("SKU-A", 2), ("SKU-B", 1))
    with transaction.atomic():
        number = (Order.all_stores.filter(store=store).aggregate(n=Max("number"))["n"] or 1000) + 1
        subtotal = sum(Decimal(price) * qty for _, qty in lines)
        order = Order.all_stores.create(
            store=store,
            number=number,
            status=Order.Status.PAID,
            payment_status=Order.PaymentStatus.SUCCEEDED,
            customer_email=f"c{uuid.uuid4().hex[:6]}@example.com",
            customer_name="Ada Lovelace",
            shipping_line1="1 Test Street",
            shipping_city="Berlin",
            shipping_postal_code="10115",
            shipping_country="DE",
            currency=store.currency,
            subtotal=subtotal,
            total=subtotal,
        )
        for i, (sku, qty) in enumerate(lines):
            OrderItem.all_stores.create(
                store=store,
                order=order,
                product_id=i + 1,
                sku=sku,
                name=f"Product {sku}",
                unit_price=Decimal(price),
                quantity=qty,
                line_total=Decimal(price) * qty,
            )
    return order


def started(store, *lines) -> Fulfillment:
    order = make_paid_order(store, *lines)
    return services.start_fulfillment(store=store, order_id=order.pk)


def walk_to(store, status: str, *lines) -> Fulfillment:
    """A fresh fulfillment brought to `status` through the services."""
    f = started(store, *lines)
    if status == Fulfillment.Status.CANCELLED:
        services.cancel_fulfillment(store=store, order_id=f.order_id)
        f.refresh_from_db()
        return f
    steps = [
        (Fulfillment.Status.PICKING, lambda: services.pick(store=store, fulfillment=f, actor="t")),
        (
            Fulfillment.Status.PACKED,
            lambda: services.pack(store=store, fulfillment=f, packages=1, weight_grams=900, actor="t"),
        ),
        (
            Fulfillment.Status.READY_TO_SHIP,
            lambda: services.mark_ready(store=store, fulfillment=f, actor="t"),
        ),
        (
            Fulfillment.Status.SHIPPED,
            lambda: services.ship(store=store, fulfillment=f, carrier="dhl", actor="t"),
        ),
    ]
    for reached, step in steps:
        if f.status == status:
            break
        step()
        assert f.status == reached
    f.refresh_from_db()
    return f


def shipped(store, *lines) -> Shipment:
    f = walk_to(store, Fulfillment.Status.SHIPPED, *lines)
    return Shipment.all_stores.get(fulfillment=f)


SHIPMENT_PATHS = {
    Shipment.Status.LABEL_CREATED: [],
    Shipment.Status.IN_TRANSIT: ["in_transit"],
    Shipment.Status.OUT_FOR_DELIVERY: ["in_transit", "out_for_delivery"],
    Shipment.Status.DELIVERED: ["in_transit", "out_for_delivery", "delivered"],
    Shipment.Status.EXCEPTION: ["in_transit", "exception"],
    Shipment.Status.RETURNED: ["in_transit", "exception", "returned"],
}


def shipment_in(store, status: str) -> Shipment:
    s = shipped(store)
    for to in SHIPMENT_PATHS[status]:
        delivery.advance_shipment(shipment=s, to=to, actor="t")
    assert s.status == status
    return s


def signed(carrier: str, payload: dict | bytes) -> tuple[bytes, str]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sig = hmac.new(settings.CARRIER_SECRETS[carrier].encode(), body, hashlib.sha256).hexdigest()
    return body, f"sha256={sig}"
