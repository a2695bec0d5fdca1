"""Payments' reconciler sweep: lost fraud checks and payment handlers re-driven, stalled payments
and refunds re-driven, the backlog rule, and payments' judgement of an unpaid order's expiry (its
guard on orders' expiry sweep). Orders frozen in each stuck state (rows written directly, no worker)
are repaired by one run of `core.reconcile`, each with its `order.reconciled` / `order.expired`
event and its alert; a second run changes nothing; a payment that may still charge is never expired
under."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings as conf
from django.utils import timezone

from orderflow.core.events import Event
from orders import services as order_services
from orders.models import Order
from payments import services, tasks
from payments.models import Payment, PaymentAttempt
from tests.factories import make_product
from tests.payments.helpers import create_order, stock
from tests.reconciling import (
    alert,
    deliver_alerts,
    empty_queues,
    frozen,
    queued,
    reconciled,
    stale_payment,
    sweep,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_queues():
    empty_queues()
    yield
    empty_queues()


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="20.00", stock=10)


# ------------------------------------------------------------------------- lost fraud check


def test_pending_order_whose_fraud_check_was_lost_is_requeued_once(
    store, product, django_capture_on_commit_callbacks
):
    stuck = frozen(create_order(store, (product, 2)), seconds=60)
    young = create_order(store, (product, 1))  # within the window: its check may just be queued

    assert sweep(django_capture_on_commit_callbacks) == {"fraud_check_requeued": 1}

    assert queued("payments.screen_and_charge") == [[str(stuck.pk), store.pk]]
    [data] = reconciled(store, stuck)
    assert data["problem"] == "fraud_check_missing" and data["action"] == "requeued"
    assert data["handler_ran"] is False and data["task"] == "payments.screen_and_charge"
    assert data["stuck_seconds"] >= 60
    assert reconciled(store, young) == []
    deliver_alerts(store, stuck)
    a = alert(store, stuck, "order_reconciled")
    assert (a.severity, a.status) == ("warning", "open")
    assert a.message == "Order reconciled: fraud check missing (requeued)"

    # a second sweep within the window does nothing more
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert queued("payments.screen_and_charge") == [] and len(reconciled(store, stuck)) == 1

    # the requeued task is the ordinary one: it screens the order and moves it on (how far depends
    # only on whether a gateway answers; this test does not start one)
    tasks.screen_and_charge(str(stuck.pk), store.pk)
    moved = Order.all_stores.get(pk=stuck.pk)
    assert moved.status != "pending" and moved.risk_decision == "approve"


def test_a_deep_payments_queue_is_a_backlog_so_nothing_is_redriven_until_it_drains(
    store, product, settings, django_capture_on_commit_callbacks
):
    stuck = frozen(create_order(store, (product, 2)), seconds=60)
    settings.RECONCILE_BACKLOG_LIMIT = 5
    r = redis.Redis.from_url(conf.CELERY_BROKER_URL)
    waiting = json.dumps({"headers": {"task": "waiting"}, "body": ""})
    r.lpush("payments", *[waiting] * 3)  # charges
    r.lpush("orders", *[waiting] * 3)  # fraud checks: the two queues count together

    assert sweep(django_capture_on_commit_callbacks) == {"skipped_backlog": 6}
    assert reconciled(store, stuck) == [] and queued("payments.screen_and_charge") == []

    r.delete("payments", "orders")  # the workers caught up; the check is still missing: now it is lost
    assert sweep(django_capture_on_commit_callbacks) == {"fraud_check_requeued": 1}
    assert queued("payments.screen_and_charge") == [[str(stuck.pk), store.pk]]


def test_an_order_whose_fraud_check_ran_is_not_requeued_even_if_still_pending(
    store, product, django_capture_on_commit_callbacks
):
    order = frozen(create_order(store, (product, 1)), seconds=60)
    Event.all_stores.create(
        store=store, order_id=order.pk, topic="fraud.checked", data={"decision": "approve"}
    )
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert queued("payments.screen_and_charge") == []


def test_reconciler_alerts_are_listed_and_filterable_in_the_api(
    api, store, product, django_capture_on_commit_callbacks
):
    order = frozen(create_order(store, (product, 1)), seconds=60)
    sweep(django_capture_on_commit_callbacks)
    deliver_alerts(store, order)
    r = api.get("/api/v1/alerts?kind=order_reconciled")
    assert r.status_code == 200
    [listed] = r.json()["results"]
    assert (listed["kind"], listed["severity"], listed["subject"]) == (
        "order_reconciled",
        "warning",
        f"order:{order.pk}",
    )


# ------------------------------------------------------------------- lost payment handler


def test_payment_processing_order_without_a_payment_gets_one_started(
    store, product, django_capture_on_commit_callbacks
):
    order = frozen(create_order(store, (product, 2)), status="payment_processing", seconds=60)
    assert not Payment.all_stores.filter(order=order).exists()

    assert sweep(django_capture_on_commit_callbacks) == {"payment_started": 1}

    payment = Payment.all_stores.get(order=order)
    assert payment.status == "pending" and payment.idempotency_key == f"charge-{payment.pk}"
    assert queued("payments.charge_payment") == [[str(payment.pk), store.pk]]
    [data] = reconciled(store, order)
    assert (data["problem"], data["action"], data["payment_id"]) == (
        "payment_missing",
        "payment_started",
        str(payment.pk),
    )
    deliver_alerts(store, order)
    assert alert(store, order, "order_reconciled").severity == "warning"

    assert sweep(django_capture_on_commit_callbacks) == {}
    assert queued("payments.charge_payment") == [] and Payment.all_stores.filter(order=order).count() == 1


def test_a_stalled_payment_is_redriven_through_reconcile_payments_with_its_event(
    store, product, django_capture_on_commit_callbacks
):
    order = create_order(store, (product, 1))
    services.screen_order(store=store, order_id=order.pk)  # approved: payment opened, its task lost
    payment = stale_payment(Payment.all_stores.get(order=order))

    assert sweep(django_capture_on_commit_callbacks) == {"payment_requeued": 1}

    assert queued("payments.charge_payment") == [[str(payment.pk), store.pk]]
    [data] = reconciled(store, order)
    assert (data["problem"], data["action"], data["payment_status"]) == (
        "payment_stalled",
        "requeued",
        "pending",
    )
    assert sweep(django_capture_on_commit_callbacks) == {}  # touched: left to the re-driven task


# ---------------------------------------------------------------------------------- expiry


def test_unpaid_orders_expire_after_the_store_window(store, product, django_capture_on_commit_callbacks):
    store.settings = {"order_expiry_minutes": 30}
    store.save()
    pending = frozen(create_order(store, (product, 1)), seconds=31 * 60)
    review = frozen(create_order(store, (product, 1)), status="fraud_review", seconds=31 * 60)
    processing = create_order(store, (product, 1))
    services.screen_order(store=store, order_id=processing.pk)  # payment opened, never charged
    processing = frozen(processing, seconds=31 * 60)
    payment = stale_payment(Payment.all_stores.get(order=processing))
    young = frozen(create_order(store, (product, 1)), seconds=29 * 60)  # within the window
    assert stock(product) == (10, 4)

    counts = sweep(django_capture_on_commit_callbacks)

    assert counts["expired"] == 3
    statuses = dict(Order.all_stores.filter(store=store).values_list("pk", "status"))
    assert [statuses[o.pk] for o in (pending, review, processing)] == ["expired"] * 3
    assert statuses[young.pk] == "pending"
    assert stock(product) == (10, 1)  # only the young order's unit still reserved
    expired = Event.all_stores.get(store=store, order_id=review.pk, topic="order.expired")
    assert expired.data["previous_status"] == "fraud_review"
    assert expired.data["reason"] == "not paid within 30 minutes" and expired.data["units_released"] == 1
    # its payment can never charge now: closed without a gateway call
    payment.refresh_from_db()
    assert (payment.status, payment.error_code, payment.attempts) == ("failed", "order_expired", 0)
    assert Event.all_stores.filter(order_id=processing.pk, topic="payment.cancelled").exists()
    assert services.attempt_charge(store=store, payment_id=payment.pk).outcome == "failed"
    deliver_alerts(store, pending)
    a = alert(store, pending, "order_expired")
    assert (a.severity, a.message) == ("info", "Order expired in pending: not paid within 30 minutes")

    again = sweep(django_capture_on_commit_callbacks)
    assert "expired" not in again
    assert Event.all_stores.filter(store=store, topic="order.expired").count() == 3


def test_an_order_is_not_expired_while_its_payment_may_still_charge(
    store, product, django_capture_on_commit_callbacks
):
    store.settings = {"order_expiry_minutes": 30}
    store.save()
    orders = []
    for _ in range(4):
        order = create_order(store, (product, 1))
        services.screen_order(store=store, order_id=order.pk)
        orders.append(frozen(order, seconds=31 * 60))
    running, retry_due, unknown, definite = (Payment.all_stores.get(order=o) for o in orders)
    # 1. an attempt going on right now (touched just now)
    Payment.all_stores.filter(pk=running.pk).update(status="processing", attempts=1)
    # 2. a retry scheduled a few seconds from now, last touched long ago
    stale_payment(retry_due)
    Payment.all_stores.filter(pk=retry_due.pk).update(
        status="processing", attempts=1, next_retry_at=timezone.now() + timedelta(seconds=20)
    )
    # 3. nothing running, but a call timed out: the gateway may have charged
    # 4. nothing running, and every answer was definite (a 503): may expire
    for payment, outcome, code in (
        (unknown, "timeout", "timeout"),
        (definite, "transient_error", "http_503"),
    ):
        Payment.all_stores.filter(pk=payment.pk).update(status="processing", attempts=1)
        PaymentAttempt.all_stores.create(
            store=store, payment=payment, number=1, started_at=timezone.now() - timedelta(hours=1),
            finished_at=timezone.now() - timedelta(hours=1), outcome=outcome, error_code=code,
        )  # fmt: skip
        stale_payment(payment)

    counts = sweep(django_capture_on_commit_callbacks)

    statuses = [Order.all_stores.get(pk=o.pk).status for o in orders]
    assert statuses == ["payment_processing", "payment_processing", "payment_processing", "expired"]
    assert counts["expiry_deferred_payment_in_flight"] == 2
    assert counts["expiry_deferred_payment_outcome_unknown"] == 1
    assert counts["expired"] == 1
    # the unknown one is re-driven instead: the same key settles it (paid, or payment_failed)
    assert queued("payments.charge_payment") == [[str(unknown.pk), store.pk]]
    assert reconciled(store, orders[2])[0]["problem"] == "payment_stalled"
    assert stock(product) == (10, 3)


def test_a_captured_payment_of_an_expired_order_is_refunded(
    store, product, gw, django_capture_on_commit_callbacks
):
    order = create_order(store, (product, 2))
    services.screen_order(store=store, order_id=order.pk)
    payment = Payment.all_stores.get(order=order)
    assert services.attempt_charge(store=store, payment_id=payment.pk).outcome == "succeeded"
    # Frozen as a charge that landed just as the order expired, its refund message lost.
    Order.all_stores.filter(pk=order.pk).update(status="expired")
    stale_payment(payment)

    assert sweep(django_capture_on_commit_callbacks) == {"refund_requeued": 1}

    assert queued("payments.refund_payment") == [[str(payment.pk), store.pk]]
    assert reconciled(store, order)[-1]["problem"] == "refund_missing"
    assert tasks.refund_payment(str(payment.pk), store.pk) == "refunded"
    [charge] = gw.ledger(order_id=str(order.pk))
    assert charge["refunded_amount"] == "40.00"
    assert sweep(django_capture_on_commit_callbacks) == {}


def test_the_charge_task_does_not_charge_an_order_that_expired_after_it_looked(store, product, gw):
    order = create_order(store, (product, 1))
    services.screen_order(store=store, order_id=order.pk)
    payment = Payment.all_stores.select_related("order").get(order=order)
    payment.store = payment.order.store = store  # what the task holds after its first look

    order_services.expire(store=store, order=order, reason="test")
    assert services._begin_attempt(payment) is None
    assert not PaymentAttempt.all_stores.filter(payment=payment).exists()
    assert gw.ledger(order_id=str(order.pk)) == []


def test_the_screening_and_the_charge_share_one_task_on_the_payments_queue():
    from celery import current_app

    from orderflow.core.events import handlers_for

    route = current_app.amqp.router.route
    assert route({}, "payments.screen_and_charge")["queue"].name == "payments"
    assert route({}, "payments.charge_payment")["queue"].name == "payments"
    assert [(h.name, h.queue) for h in handlers_for("order.created") if h.name.startswith("payments.")] == [
        ("payments.receivers.screen_and_charge", "payments")
    ]
