"""Exactly once or not at all, whatever the gateway, the network or our workers do: random gateway
faults, a read timeout after the gateway charged, a worker SIGKILLed mid-charge, an outage."""

import time
from collections import Counter

import pytest
from django.conf import settings

from alerts.models import Alert
from orderflow.core import broker
from orderflow.core.events import Event
from orders.models import Order
from payments.models import Payment, PaymentAttempt
from tests.conftest import wait_until
from tests.factories import make_product
from tests.payments.helpers import CARD_OK, CARD_SLOW, charges_by_order, event, post_order, settled_payments

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_random_gateway_faults_never_charge_an_order_twice(start_worker, gateway, api, store):
    # The breaker has its own test; here it is held back so the 50 orders show the retry path alone.
    # Only this step's queues — the fraud check's (orders) and the charge's (payments) — without
    # the alerts and fulfillment listeners.
    start_worker(queues="orders,payments", concurrency=4, env={"BREAKER_FAILURE_THRESHOLD": "100000"})
    make_product(store, "TEE", price="9.99", stock=500)
    # 50 orders from one test card and one IP in a minute is what velocity rules catch; lift them
    store.settings = {"fraud_velocity_card_limit": 1000, "fraud_velocity_ip_limit": 1000}
    store.save()
    gateway.control(failure_rate=0.5, seed=7)
    orders = [post_order(api, ("TEE", 1)) for _ in range(50)]

    try:
        wait_until(lambda: settled_payments(orders) == 50, 90, message="all 50 payments final")
    except AssertionError as exc:
        ids = [o.pk for o in orders]
        order_states = Counter(Order.all_stores.filter(pk__in=ids).values_list("status", flat=True))
        payment_states = Counter(Payment.all_stores.filter(order__in=ids).values_list("status", flat=True))
        raise AssertionError(f"{exc}; orders: {order_states}, payments: {payment_states}") from None

    ledger = charges_by_order(gateway.ledger())
    statuses = dict(
        Order.all_stores.filter(pk__in=[o.pk for o in orders]).values_list("pk", "payment_status")
    )
    assert set(statuses.values()) <= {"succeeded", "failed"}
    assert all(len(charges) <= 1 for charges in ledger.values())
    for payment in Payment.all_stores.filter(order__in=orders):
        charges = ledger.get(str(payment.order_id), [])
        if payment.status == "succeeded":
            assert [c["id"] for c in charges] == [payment.gateway_charge_id]
            assert charges[0]["idempotency_key"] == payment.idempotency_key
        else:
            assert payment.status == "failed" and charges == []
    final = set(Order.all_stores.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True))
    assert final <= {"paid", "payment_failed", "fulfilling"}
    assert Payment.all_stores.filter(order__in=orders, attempts__gt=1).exists()  # faults were retried


def test_a_read_timeout_after_the_gateway_charged_finds_the_same_charge(start_worker, gateway, api, store):
    start_worker(env={"GATEWAY_READ_TIMEOUT": "0.5"})
    make_product(store, "TEE", price="9.99", stock=5)
    gateway.control(latency_ms=1500)  # the gateway books the charge, then answers too late
    order = post_order(api, ("TEE", 1))

    wait_until(lambda: gateway.ledger(order_id=str(order.pk)), 30, message="the gateway to book the charge")
    gateway.control(latency_ms=0)  # the network heals; the retry uses the same Idempotency-Key
    wait_until(lambda: settled_payments([order]) == 1, 30, message="the payment final")

    payment = Payment.all_stores.get(order=order)
    charges = gateway.ledger(order_id=str(order.pk))
    assert payment.status == "succeeded" and [c["id"] for c in charges] == [payment.gateway_charge_id]
    outcomes = list(
        PaymentAttempt.all_stores.filter(payment=payment).order_by("number").values_list("outcome", flat=True)
    )
    assert outcomes[0] == "timeout" and outcomes[-1] == "succeeded"
    assert payment.attempts >= 2


def test_a_worker_killed_mid_charge_is_replaced_and_the_order_is_charged_once(
    start_worker, gateway, api, store
):
    env = {"CELERY_VISIBILITY_TIMEOUT": "5"}  # the unacked charge message comes back after 5 s
    first = start_worker(env=env)
    make_product(store, "TEE", price="9.99", stock=5)
    order = post_order(api, ("TEE", 1), card=CARD_SLOW)  # the gateway holds its answer 1.5 s

    wait_until(lambda: gateway.ledger(order_id=str(order.pk)), 30, message="the charge in flight")
    first.kill()  # SIGKILL the whole worker while the charge task waits for the gateway
    payment = Payment.all_stores.get(order=order)
    assert payment.status == "processing"
    assert list(PaymentAttempt.all_stores.filter(payment=payment).values_list("outcome", flat=True)) == [
        "in_flight"
    ]
    # Redis: let the visibility timeout pass, so the new worker restores the message at start.
    # RabbitMQ requeued it when the killed worker's connection closed.
    time.sleep(5.5 if settings.BROKER_KIND == broker.REDIS else 0)
    start_worker(env=env)

    wait_until(lambda: settled_payments([order]) == 1, 40, message="the payment final after redelivery")
    payment.refresh_from_db()
    charges = gateway.ledger(order_id=str(order.pk))
    assert payment.status == "succeeded" and payment.attempts == 2
    assert [c["id"] for c in charges] == [payment.gateway_charge_id]
    assert Order.all_stores.get(pk=order.pk).paid_at is not None


def test_an_outage_opens_the_breaker_and_orders_complete_after_recovery(celery_worker, gateway, api, store):
    make_product(store, "TEE", price="9.99", stock=20)
    gateway.control(outage=True)
    orders = [post_order(api, ("TEE", 1), card=CARD_OK) for _ in range(3)]

    down = wait_until(lambda: event(store, "gateway.down"), 30, message="gateway.down")
    alert = wait_until(
        lambda: Alert.all_stores.filter(store=store, kind="gateway_down", status="open").first(),
        20,
        message="the gateway_down alert",
    )
    # longer than the old retry budget (PAYMENT_MAX_RETRIES=3, backoff <= 1 s) and several
    # cool-downs: the orders wait, spending no attempt
    wait_until(
        lambda: Payment.all_stores.filter(order__in=orders, waiting_since__isnull=False).count() == 3,
        30,
        message="all three orders waiting",
    )
    time.sleep(8)
    gateway.control(outage=False)

    wait_until(lambda: settled_payments(orders) == 3, 40, message="all payments final after recovery")
    up = wait_until(lambda: event(store, "gateway.up"), 10, message="gateway.up")
    assert up.pk > down.pk
    payments = Payment.all_stores.filter(order__in=orders)
    assert {p.status for p in payments} == {"succeeded"}
    ledger = charges_by_order(gateway.ledger())
    assert all(len(ledger[str(o.pk)]) == 1 for o in orders)
    for p in payments:  # attempts count calls only: the waiting left no rows and spent nothing
        assert PaymentAttempt.all_stores.filter(payment=p).count() == p.attempts <= 3
    assert {e.data["reason"] for e in Event.all_stores.filter(store=store, topic="payment.waiting")} == {
        "breaker_open"
    }
    wait_until(
        lambda: Alert.all_stores.get(pk=alert.pk).status == "resolved", 20, message="the alert resolved"
    )
