"""The 202 of an accepted order is the order's representation (`OrderOut`): the same body the
order's own endpoint answers, and the exact bytes a replay of the key gets back."""

import json

import pytest

from orders.models import IdempotencyRecord, Order
from orders.services import record_payment_progress
from tests.factories import make_product, order_body
from tests.orders.helpers import place

pytestmark = pytest.mark.django_db


def test_the_202_is_what_the_order_endpoint_shows_and_follows_later_changes(api, store):
    make_product(store, "TSHIRT-M", price="19.90", stock=10)
    make_product(store, "MUG", price="7.05", stock=5)
    body = order_body(("TSHIRT-M", 3), ("MUG", 1))
    body["metadata"] = {"cart": "c-ü-1", "gift": True, "n": 3}
    body["shipping_address"]["line2"] = "Hinterhaus"
    r = place(api, body)
    assert r.status_code == 202, r.content
    accepted = r.json()
    assert r["Location"] == f"/api/v1/orders/{accepted['id']}"
    assert (accepted["subtotal"], accepted["total"], accepted["currency"]) == ("66.75", "66.75", "EUR")
    assert [(i["sku"], i["unit_price"], i["line_total"]) for i in accepted["items"]] == [
        ("TSHIRT-M", "19.90", "59.70"),
        ("MUG", "7.05", "7.05"),
    ]
    assert accepted["shipping_address"]["line2"] == "Hinterhaus"
    assert accepted["tracking_url"].endswith(f"/track/{accepted['tracking_token']}")
    detail = api.get(r["Location"])
    assert detail.status_code == 200
    assert detail.json() == accepted

    order = Order.all_stores.get(pk=accepted["id"])
    Order.all_stores.filter(pk=order.pk).update(
        risk_score=42, risk_decision="review", risk_rules=[{"rule": "velocity", "hit": True}]
    )
    record_payment_progress(order=order, status="retrying", attempts=2)
    shown = api.get(r["Location"]).json()
    assert shown["risk"] == {"score": 42, "decision": "review", "rules": [{"rule": "velocity", "hit": True}]}
    assert shown["payment"] == {"brand": "visa", "last4": "4242", "attempts": 2}


def test_a_replay_answers_the_stored_bytes_exactly(api, store):
    make_product(store, "TSHIRT-M", price="19.90", stock=10)
    body = order_body(("TSHIRT-M", 2))
    body["metadata"] = {"zeta": 1, "alpha": [1, "x"]}
    first = place(api, body, key="same-key")
    again = place(api, body, key="same-key")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again["Idempotent-Replayed"] == "true"
    record = IdempotencyRecord.all_stores.get(store=store, key="same-key")
    assert first.content == again.content == bytes(record.response_body)
    assert json.loads(first.content)["metadata"] == {"zeta": 1, "alpha": [1, "x"]}
