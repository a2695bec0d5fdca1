"""`order_json` (intake's serializer-free fast path) gives exactly `OrderOut`'s bytes."""

import json
import uuid

import pytest
from rest_framework.renderers import JSONRenderer

from orders.api import OrderCreateSerializer
from orders.idempotency import fingerprint
from orders.models import Order
from orders.representation import OrderOut, attach_items, order_json
from orders.services import place_order, record_payment_progress
from tests.factories import make_product, order_body
from tests.orders.helpers import place

pytestmark = pytest.mark.django_db


def _serializer_bytes(order: Order) -> bytes:
    return JSONRenderer().render(OrderOut(order).data)


def test_fast_order_json_equals_the_serializer_for_a_fresh_and_a_reloaded_order(api, store):
    make_product(store, "TSHIRT-M", price="19.90", stock=10)
    make_product(store, "MUG", price="7.05", stock=5)
    body = order_body(("TSHIRT-M", 3), ("MUG", 1))
    body["metadata"] = {"cart": "c-ü-1", "gift": True, "n": 3}
    body["shipping_address"]["line2"] = "Hinterhaus"
    r = place(api, body)
    assert r.status_code == 202, r.content
    order = Order.all_stores.prefetch_related("items").get(pk=r.json()["id"])
    assert order_json(order) == _serializer_bytes(order)
    # the 202 the intake stored (built by the fast path from the order in memory) is the
    # serializer's view of the same row, but for metadata's key order (jsonb orders keys)
    assert r.json() == json.loads(_serializer_bytes(order))

    Order.all_stores.filter(pk=order.pk).update(
        risk_score=42, risk_decision="review", risk_rules=[{"rule": "velocity", "hit": True}]
    )
    record_payment_progress(order=order, status="retrying", attempts=2)
    order = Order.all_stores.prefetch_related("items").get(pk=order.pk)
    assert order.risk_score == 42
    assert order_json(order) == _serializer_bytes(order)


def test_the_stored_202_is_the_serializer_of_the_order_in_memory(store):
    make_product(store, "TSHIRT-M", price="19.90", stock=10)
    body = order_body(("TSHIRT-M", 2))
    body["metadata"] = {"zeta": 1, "alpha": [1, "x"]}
    serializer = OrderCreateSerializer(data=body, context={"store": store})
    assert serializer.is_valid(), serializer.errors
    order = place_order(
        store=store,
        payload=serializer.validated_data,
        idempotency_key=f"k-{uuid.uuid4()}",
        request_fingerprint=fingerprint(body),
        actor="test",
    )
    attach_items(order, list(order.items.all()))
    assert order.idempotent_response.body == _serializer_bytes(order)
