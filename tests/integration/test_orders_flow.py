"""Intake to paid and back on a real worker and the real mock gateway: `order.created` reaches the
fraud check and the payment through the event path (the card through the vault, nowhere else),
and a cancel after payment gives the stock back and gets the charge refunded."""

import pytest

from inventory.selectors import ledger_mismatches
from orderflow.core.events import Event
from orders.models import Order
from tests.conftest import wait_until
from tests.factories import make_product, order_body
from tests.orders.helpers import place, stock

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _topics(order_id) -> list[str]:
    return list(Event.all_stores.filter(order_id=order_id).order_by("id").values_list("topic", flat=True))


def test_placed_order_is_paid_then_cancel_returns_stock_and_refunds(
    celery_worker, gateway, api, store, client
):
    product = make_product(store, "TEE", price="12.50", stock=10)
    r = place(api, order_body(("TEE", 2)))
    assert r.status_code == 202
    order_id = r.json()["id"]

    # Fulfillment may already have moved the order on from `paid`: payment_status is what settles.
    wait_until(
        lambda: Order.all_stores.get(pk=order_id).payment_status == "succeeded", 60, message="order paid"
    )
    assert Order.all_stores.get(pk=order_id).status in ("paid", "fulfilling", "ready_to_ship")
    charges = [c for c in gateway.ledger() if c["metadata"].get("order_id") == order_id]
    assert len(charges) == 1 and charges[0]["amount"] == "25.00"
    topics = _topics(order_id)
    assert topics.index("order.created") < topics.index("order.paid")
    token = r.json()["tracking_token"]
    steps = [s["step"] for s in client.get(f"/api/v1/track/{token}").json()["timeline"]]
    assert steps[:2] == ["placed", "payment_confirmed"]

    wait_until(lambda: stock(product)[0] == 8, 30, message="stock committed")
    r = api.post(f"/api/v1/orders/{order_id}/cancel", {"reason": "customer called"}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert stock(product) == (10, 0)
    assert ledger_mismatches() == []
    wait_until(
        lambda: any(c["refunded_amount"] == "25.00" for c in gateway.ledger() if c["id"] == charges[0]["id"]),
        60,
        message="charge refunded",
    )
    assert "order.cancelled" in _topics(order_id)
