"""Outages of any length inside the payment window (issue #15, items 1 and 2), with a real worker
and the real mock gateway: orders wait without spending attempts, are released oldest first at the
rate the gateway semaphore allows once it is back, and fail — with the reason, stock released and
an alert — only when their window ends.

The fast clock: the window is the store's setting in minutes; a test shortens one order's window
by writing its `Payment.window_ends_at` (the deadline the payment step reads) directly."""

import time
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert
from orders.models import Order
from payments.models import Payment, PaymentAttempt
from tests.conftest import wait_until
from tests.factories import make_product
from tests.payments.helpers import CARD_OK, charges_by_order, post_order, settled_payments, stock

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LIMIT = 3
FAST = {"PAYMENT_WAIT_WAKEUP_SECONDS": "3", "GATEWAY_MAX_CONCURRENT_CALLS": str(LIMIT)}


def waiting(orders) -> int:
    return Payment.all_stores.filter(order__in=[o.pk for o in orders], waiting_since__isnull=False).count()


def breakdown(orders) -> str:
    """Where the orders are, for a failure message: order statuses, payment statuses, waiting."""
    ids = [o.pk for o in orders]
    order_counts = Counter(Order.all_stores.filter(pk__in=ids).values_list("status", flat=True))
    payments = Payment.all_stores.filter(order__in=ids)
    payment_counts = Counter(payments.values_list("status", flat=True))
    return f"orders {dict(order_counts)}; payments {dict(payment_counts)}; waiting {waiting(orders)}"


def wait_for(predicate, timeout: float, message: str, orders) -> None:
    try:
        wait_until(predicate, timeout, every=0.5, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {breakdown(orders)}") from None


def test_two_hundred_orders_waiting_through_an_outage_are_released_within_the_gateway_limit(
    start_worker, gateway, api, store
):
    # more worker processes than the gateway limit, so only the semaphore keeps the calls under it
    # each waiting order wakes every 30-60 s (its window, the half-open probe; with 200 waiting
    # one wakes every few tenths of a second): 200 waking every 1.5-3 s would keep a loaded
    # worker busy with nothing but wake-ups
    start_worker(queues="orders,payments", concurrency=6, env={**FAST, "PAYMENT_WAIT_WAKEUP_SECONDS": "60"})
    make_product(store, "TEE", price="9.99", stock=500)
    store.settings = {"fraud_check_enabled": False}  # 200 orders from one card and IP are not fraud here
    store.save()
    gateway.control(outage=True)
    orders = [post_order(api, ("TEE", 1), card=CARD_OK) for _ in range(200)]
    print(f"\nplaced: {breakdown(orders)}")
    wait_for(lambda: waiting(orders) == 200, 180, "all 200 orders waiting", orders)

    gateway.reset()  # the outage ends; calls and peak counted from here
    gateway.control(latency_ms=50)  # each call takes a moment, so concurrent ones overlap
    started = time.monotonic()
    wait_for(lambda: settled_payments(orders) == 200, 240, "all 200 payments final", orders)
    took = time.monotonic() - started
    stats = gateway.stats()
    print(f"\n200 waiting orders paid {took:.1f}s after the outage ended; peak concurrent calls {stats}")

    ids = [o.pk for o in orders]
    # paid, so fulfilling (the pick list opens with the payment)
    assert set(Order.all_stores.filter(pk__in=ids).values_list("status", flat=True)) == {"fulfilling"}
    ledger = charges_by_order(gateway.ledger())
    assert all(len(ledger[str(o.pk)]) == 1 for o in orders)
    assert stats["peak_in_flight"] <= LIMIT
    payments = Payment.all_stores.filter(order__in=ids)
    for p in payments:  # attempts count calls: every row is a real call
        assert PaymentAttempt.all_stores.filter(payment=p).count() == p.attempts
    assert not PaymentAttempt.all_stores.filter(payment__in=payments, outcome="breaker_open").exists()


def test_an_order_still_waiting_when_its_window_ends_fails_with_an_alert(start_worker, gateway, api, store):
    start_worker(queues="default,orders,payments", env=FAST)
    product = make_product(store, "TEE", price="9.99", stock=5)
    gateway.control(outage=True)
    order = post_order(api, ("TEE", 2), card=CARD_OK)
    wait_until(lambda: waiting([order]) == 1, 30, message="the order waiting")
    # the fast clock: this order's window ends a second from now
    Payment.all_stores.filter(order=order).update(window_ends_at=timezone.now() + timedelta(seconds=1))

    wait_until(lambda: settled_payments([order]) == 1, 30, message="the payment failed at its window's end")
    order.refresh_from_db()
    payment = Payment.all_stores.get(order=order)
    assert (order.status, payment.error_code) == ("payment_failed", "gateway_unavailable")
    assert payment.last_error.startswith("the gateway was unavailable for ")
    assert stock(product)[1] == 0
    alert = wait_until(
        lambda: Alert.all_stores.filter(store=store, kind="payment_failed").first(), 20, message="the alert"
    )
    assert "the gateway was unavailable for" in alert.message
    assert gateway.ledger() == []
