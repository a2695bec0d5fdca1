"""The payments step end to end on a real worker: fraud decisions through the `order.created`
handler, the operator's review, and refunds when an order is cancelled (also mid-charge)."""

from decimal import Decimal

import pytest

from alerts.models import Alert
from orders.models import Order
from payments.models import Payment
from tests.conftest import wait_until
from tests.factories import make_product
from tests.payments.helpers import CARD_SLOW, event, post_order, settled_payments, stock, topics

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def status(order) -> str:
    return Order.all_stores.get(pk=order.pk).status


def test_fraud_review_approve_and_reject_through_the_worker(celery_worker, gateway, api, store):
    product = make_product(store, "TEE", price="10.00", stock=20)
    to_approve = post_order(api, ("TEE", 2), shipping_address={**_address(), "country": "IR"})
    to_reject = post_order(api, ("TEE", 3), shipping_address={**_address(), "country": "IR"})
    auto_rejected = post_order(
        api, ("TEE", 4), email="x@mailinator.com", shipping_address={**_address(), "country": "IR"}
    )
    clean = post_order(api, ("TEE", 1))

    wait_until(lambda: status(auto_rejected) == "rejected", 30, message="the high-risk order rejected")
    wait_until(lambda: status(to_approve) == status(to_reject) == "fraud_review", 30, message="orders held")
    wait_until(lambda: settled_payments([clean]) == 1, 30, message="the clean order paid")
    checked = event(store, "fraud.checked", auto_rejected)
    assert checked.data["decision"] == "reject" and checked.data["score"] == 80
    assert {r["rule"] for r in checked.data["rules"]} == {"high_risk_country", "disposable_email"}
    assert not Payment.all_stores.filter(order=auto_rejected).exists()
    wait_until(
        lambda: Alert.all_stores.filter(store=store, kind="fraud_review", status="open").count() == 2,
        20,
        message="two fraud_review alerts",
    )

    assert api.post(f"/api/v1/orders/{to_approve.pk}/approve").status_code == 200
    assert (
        api.post(f"/api/v1/orders/{to_reject.pk}/reject", {"reason": "no"}, format="json").status_code == 200
    )

    wait_until(lambda: settled_payments([to_approve]) == 1, 30, message="the approved order's payment")
    approved = Order.all_stores.get(pk=to_approve.pk)
    assert approved.paid_at is not None and approved.payment_status == "succeeded"
    assert len(gateway.ledger(order_id=str(to_approve.pk))) == 1
    assert status(to_reject) == "rejected" and gateway.ledger(order_id=str(to_reject.pk)) == []
    # 20 - 2 (approved, paid) - 1 (clean, paid); the rejected 3 and 4 came back
    assert stock(product) == (17, 0)


def test_cancelling_a_paid_order_refunds_it_once(celery_worker, gateway, api, store):
    make_product(store, "TEE", price="10.00", stock=5)
    order = post_order(api, ("TEE", 2))
    wait_until(lambda: settled_payments([order]) == 1, 30, message="the order paid")

    assert api.post(f"/api/v1/orders/{order.pk}/cancel").status_code == 200
    wait_until(
        lambda: Payment.all_stores.get(order=order).status == "refunded", 30, message="the payment refunded"
    )
    payment = Payment.all_stores.get(order=order)
    assert payment.refunded_amount == Decimal("20.00") and payment.refund_id
    [charge] = gateway.ledger(order_id=str(order.pk))
    assert charge["refunded_amount"] == "20.00"
    assert Order.all_stores.get(pk=order.pk).payment_status == "refunded"
    assert event(store, "payment.refunded", order).data["refund_id"] == payment.refund_id


def test_an_order_cancelled_while_its_charge_is_in_flight_is_refunded(celery_worker, gateway, api, store):
    make_product(store, "TEE", price="10.00", stock=5)
    order = post_order(api, ("TEE", 1), card=CARD_SLOW)  # the gateway takes 1.5 s to answer
    wait_until(lambda: gateway.ledger(order_id=str(order.pk)), 30, message="the charge in flight")
    assert api.post(f"/api/v1/orders/{order.pk}/cancel").status_code == 200

    wait_until(
        lambda: Payment.all_stores.get(order=order).status == "refunded",
        30,
        message="the late charge refunded",
    )
    [charge] = gateway.ledger(order_id=str(order.pk))
    assert charge["refunded_amount"] == charge["amount"]
    assert status(order) == "cancelled"
    assert "order.paid" not in topics(store, order)


def _address():
    return {"line1": "1 Test Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}
