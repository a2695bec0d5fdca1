"""End to end on a real worker and the real mock gateway: a declined order paid on a second try
by an operator with the same card, through the event path (`payment.retry_requested` → fraud
check → `order.payment_processing` → charge), charged exactly once under a new gateway key."""

import pytest

from orderflow.core import vault
from orders.models import Order
from payments.models import Payment
from tests.conftest import wait_until
from tests.factories import make_product
from tests.payments.helpers import CARD_OK, post_order, stock, topics

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _status(order) -> str:
    return Order.all_stores.get(pk=order.pk).status


def test_a_decline_then_an_operator_retry_with_the_same_card_is_paid_once(celery_worker, gateway, api, store):
    product = make_product(store, "TEE", price="12.50", stock=5)
    gateway.control(decline_next=1)
    order = post_order(api, ("TEE", 2), card=CARD_OK)
    wait_until(lambda: _status(order) == "payment_failed", 30, message="the decline")
    first_key = Payment.all_stores.get(order=order).idempotency_key
    assert stock(product) == (5, 0)
    assert vault.detokenize(store.pk, order.pk)["card_number"] == CARD_OK

    r = api.post(f"/api/v1/orders/{order.pk}/retry-payment", {}, format="json")
    assert r.status_code == 202, r.content
    again = api.post(f"/api/v1/orders/{order.pk}/retry-payment", {}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"

    # paid, or already past it (the fulfillment opens as soon as the payment is recorded)
    wait_until(
        lambda: (
            Order.all_stores.get(pk=order.pk).payment_status == "succeeded"
            and _status(order) in ("paid", "fulfilling", "ready_to_ship", "shipped", "delivered")
        ),
        30,
        message="paid after the retry",
    )
    payment = Payment.all_stores.get(order=order)
    [charge] = gateway.ledger(order_id=str(order.pk))
    assert charge["idempotency_key"] == payment.idempotency_key != first_key
    assert charge["id"] == payment.gateway_charge_id
    assert stock(product) == (3, 0)
    trail = topics(store, order)
    assert trail.count("payment.retry_requested") == 1 and trail.count("fraud.checked") == 2
    assert trail.index("payment.retry_requested") < trail.index("order.paid")
    wait_until(lambda: vault.detokenize(store.pk, order.pk) is None, 10, message="the card left the vault")
