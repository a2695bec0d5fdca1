"""The reconciler on a real worker and the real gateway: an order whose `order.created` message was
lost (taken off the broker before any worker saw it) ends paid once the beat task (`core.reconcile`,
which runs payments' sweep with every other app's) runs."""

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from alerts.models import Alert
from orderflow.core.events import Event
from orderflow.core.outbox import dispatch_pending
from orders.models import Order
from tests.conftest import wait_until
from tests.factories import make_product
from tests.payments.helpers import post_order, stock

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

QUEUES = ("default", "orders", "payments", "fulfillment")


def drop_queued_messages() -> int:
    """Lose every message waiting in the broker, Redis or RabbitMQ (the queues only: the card vault
    stays). A queue the broker does not have yet holds nothing."""
    waiting = 0
    with current_app.connection_for_write() as conn:
        for queue in QUEUES:
            with conn.channel() as channel:
                try:
                    waiting += channel.queue_purge(queue) or 0
                except conn.channel_errors:
                    pass
    return waiting


def test_an_order_whose_created_message_was_lost_is_paid_after_the_reconciler_runs(
    start_worker, gateway, api, store
):
    product = make_product(store, "TEE", price="12.00", stock=5)
    order = post_order(api, ("TEE", 2))
    assert dispatch_pending() >= 1  # the dispatcher sends order.created (no worker is running yet)
    created = Event.all_stores.get(store=store, order_id=order.pk, topic="order.created")
    assert created.published_at is not None  # sent, so the outbox relay will not send it again
    assert drop_queued_messages() >= 1  # ... and lost
    # Stuck for longer than RECONCILE_STUCK_AFTER_SECONDS (5 s in the test settings).
    Order.all_stores.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=60))

    start_worker()
    current_app.send_task("core.reconcile")  # what beat sends every minute: every app's sweep

    wait_until(lambda: Order.all_stores.get(pk=order.pk).status in ("paid", "fulfilling"), 30,
               message="the stuck order paid")  # fmt: skip
    [charge] = gateway.ledger(order_id=str(order.pk))
    assert charge["amount"] == "24.00"
    [fix] = Event.all_stores.filter(store=store, order_id=order.pk, topic="order.reconciled")
    assert (fix.data["problem"], fix.data["action"], fix.data["handler_ran"]) == (
        "fraud_check_missing",
        "requeued",
        False,
    )
    wait_until(
        lambda: Alert.all_stores.filter(
            store=store, kind="order_reconciled", subject=f"order:{order.pk}"
        ).exists(),
        20,
        message="the order_reconciled alert",
    )
    assert stock(product) == (3, 0)
