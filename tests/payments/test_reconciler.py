"""The stuck-order reconciler: orders frozen in each stuck state (rows written directly, no worker)
are repaired or expired by one sweep, each with its `order.reconciled` / `order.expired` event and
its alert; a second sweep changes nothing; a payment that may still charge is never expired under.

A sweep runs with its after-commit work executed, so what it enqueues is really sent to the test
broker; `queued()` reads it back off the queue."""

from __future__ import annotations

import base64
import json
import threading
from datetime import timedelta

import pytest
import redis
from django.conf import settings as conf
from django.db import connection, transaction
from django.utils import timezone

from alerts.models import Alert
from inventory.models import StockMovement
from orderflow.core.events import Event, handlers_for, run_handler_once
from orders import services as order_services
from orders.models import Order
from payments import reconciler, services, tasks
from payments.models import Payment, PaymentAttempt
from tests.factories import make_product, make_store
from tests.payments.helpers import create_order, stock

pytestmark = pytest.mark.django_db

QUEUES = ("payments", "default", "orders", "fulfillment")


@pytest.fixture(autouse=True)
def _empty_queues():
    r = redis.Redis.from_url(conf.CELERY_BROKER_URL)
    r.delete(*QUEUES)
    yield
    r.delete(*QUEUES)


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="20.00", stock=10)


def queued(task: str) -> list[list]:
    """Args of the `task` messages waiting in the broker (taken off the queue)."""
    r = redis.Redis.from_url(conf.CELERY_BROKER_URL)
    found = []
    for queue in QUEUES:
        for raw in r.lrange(queue, 0, -1):
            message = json.loads(raw)
            if message["headers"].get("task") == task:
                found.append(json.loads(base64.b64decode(message["body"]))[0])
                r.lrem(queue, 1, raw)
    return found


def sweep(django_capture_on_commit_callbacks) -> dict[str, int]:
    with django_capture_on_commit_callbacks(execute=True):
        return reconciler.reconcile_stuck_orders()


def frozen(order: Order, *, status: str | None = None, seconds: float = 60, **fields) -> Order:
    """Put the order in `status` as if it had stopped moving `seconds` ago."""
    then = timezone.now() - timedelta(seconds=seconds)
    values = {"created_at": then, "updated_at": then, **fields}
    if status:
        values["status"] = status
    Order.all_stores.filter(pk=order.pk).update(**values)
    order.refresh_from_db()
    return order


def reconciled(store, order) -> list[dict]:
    return [
        e.data
        for e in Event.all_stores.filter(store=store, order_id=order.pk, topic="order.reconciled").order_by(
            "id"
        )
    ]


def deliver_alerts(store, order) -> None:
    """Run the alert listener on the order's events, as the worker would."""
    for event in Event.all_stores.filter(store=store, order_id=order.pk).order_by("id"):
        for handler in handlers_for(event.topic):
            if handler.name in ("alerts.receivers.order_reconciled", "alerts.receivers.order_expired"):
                run_handler_once(event.pk, handler.name)


def alert(store, order, kind: str) -> Alert:
    return Alert.all_stores.get(store=store, kind=kind, subject=f"order:{order.pk}")


def stale_payment(payment: Payment, seconds: float | None = None) -> Payment:
    then = timezone.now() - timedelta(seconds=seconds or services.stuck_after_seconds() + 30)
    Payment.all_stores.filter(pk=payment.pk).update(updated_at=then)
    payment.refresh_from_db()
    return payment


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

    # the requeued task is the ordinary one: it moves the order on
    tasks.screen_and_charge(str(stuck.pk), store.pk)
    assert Order.all_stores.get(pk=stuck.pk).status == "payment_processing"


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


# ---------------------------------------------------------------------------- reservations


@pytest.mark.parametrize("status", ["paid", "fulfilling"])
def test_paid_order_still_holding_reserved_stock_gets_it_committed(
    store, product, status, django_capture_on_commit_callbacks
):
    order = frozen(create_order(store, (product, 2)), status=status, seconds=60)
    assert stock(product) == (10, 2)

    assert sweep(django_capture_on_commit_callbacks) == {"stock_committed": 1}

    assert stock(product) == (8, 0)
    commit = StockMovement.all_stores.get(store=store, order_id=order.pk, kind="commit")
    assert (commit.quantity, commit.actor) == (2, "reconciler")
    [data] = reconciled(store, order)
    assert (data["problem"], data["action"], data["units"], data["status"]) == (
        "stock_not_committed",
        "committed",
        2,
        status,
    )
    deliver_alerts(store, order)
    assert (
        alert(store, order, "order_reconciled").message == "Order reconciled: stock not committed (committed)"
    )

    assert sweep(django_capture_on_commit_callbacks) == {}
    assert stock(product) == (8, 0) and len(reconciled(store, order)) == 1


@pytest.mark.parametrize("status", ["payment_failed", "rejected", "cancelled", "expired"])
def test_reservation_of_an_order_that_will_never_be_paid_is_released(
    store, product, status, django_capture_on_commit_callbacks
):
    order = frozen(create_order(store, (product, 3)), status=status, seconds=60)
    live = create_order(store, (product, 2))  # a live order's reservation is its own

    assert sweep(django_capture_on_commit_callbacks) == {"reservation_released": 1}

    assert stock(product) == (10, 2)
    assert StockMovement.all_stores.get(store=store, order_id=order.pk, kind="release").quantity == 3
    [data] = reconciled(store, order)
    assert (data["problem"], data["action"], data["units"]) == ("reservation_leaked", "released", 3)
    assert reconciled(store, live) == []
    deliver_alerts(store, order)
    assert alert(store, order, "order_reconciled").data["problem"] == "reservation_leaked"

    assert sweep(django_capture_on_commit_callbacks) == {}
    assert stock(product) == (10, 2)


def test_a_freshly_closed_order_is_left_to_settle(store, product, django_capture_on_commit_callbacks):
    frozen(create_order(store, (product, 3)), status="cancelled", seconds=1)
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert stock(product) == (10, 3)


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


def test_the_window_is_per_store_and_zero_means_never(
    store, product, settings, django_capture_on_commit_callbacks
):
    settings.ORDER_EXPIRY_MINUTES = 60  # the platform default
    never = make_store("never-expires", settings={"order_expiry_minutes": 0})
    never_product = make_product(never, "MUG", stock=5)
    default = frozen(create_order(store, (product, 1)), seconds=45 * 60)  # under the 60-minute default
    kept = frozen(create_order(never, (never_product, 1)), seconds=10 * 24 * 3600)
    old = frozen(create_order(store, (product, 1)), seconds=61 * 60)

    sweep(django_capture_on_commit_callbacks)

    statuses = dict(Order.all_stores.values_list("pk", "status"))
    assert (statuses[default.pk], statuses[kept.pk], statuses[old.pk]) == ("pending", "pending", "expired")


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


# ------------------------------------------------------------------------------ concurrency


@pytest.mark.django_db(transaction=True)
def test_an_order_another_transaction_holds_is_skipped_not_waited_on(store, product):
    order = frozen(create_order(store, (product, 2)), status="cancelled", seconds=60)
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            Order.all_stores.select_for_update().get(pk=order.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        assert reconciler.reconcile_stuck_orders() == {}
        assert stock(product) == (10, 2)
    finally:
        release.set()
        holder.join(10)
    assert reconciler.reconcile_stuck_orders() == {"reservation_released": 1}
    assert stock(product) == (10, 0)


# -------------------------------------------------------------------------------- schedule


def test_beat_runs_the_reconciler_every_minute_and_the_old_payment_sweep_entry_is_retired():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="payments.reconcile_stuck_orders")
    assert task.enabled and (task.interval.every, task.interval.period) == (60, "seconds")
    assert not PeriodicTask.objects.filter(task="payments.reconcile_payments").exists()


def test_the_screening_and_the_charge_share_one_task_on_the_payments_queue():
    from celery import current_app

    from orderflow.core.events import handlers_for

    route = current_app.amqp.router.route
    assert route({}, "payments.screen_and_charge")["queue"].name == "payments"
    assert route({}, "payments.charge_payment")["queue"].name == "payments"
    assert [(h.name, h.queue) for h in handlers_for("order.created") if h.name.startswith("payments.")] == [
        ("payments.receivers.screen_and_charge", "payments")
    ]
