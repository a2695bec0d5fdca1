"""Event handlers of the payments step (thin: event → enqueue a task). Each runs in a worker on
the payments queue (the fraud check's on the orders queue, where the check itself runs: see
CELERY_TASK_ROUTES), at most once per event; they are atomic=False because they only enqueue
idempotent tasks (a redelivered handler enqueues a task that finds its work done)."""

from orderflow.core.events import Event, on_event

from . import refunds, selectors, services, tasks


@on_event("order.created", queue="orders", atomic=False)
def check_fraud_on_order_created(event: Event) -> None:
    tasks.check_fraud.delay(str(event.order_id), event.store_id)


@on_event("order.payment_processing", queue="payments", atomic=False)
def charge_on_payment_processing(event: Event) -> None:
    """Approved (by the fraud check or an operator): charge. Driven by the order's event, so the
    outbox relay guarantees the charge starts even if the approving process died after commit."""
    payment = services.ensure_payment(store=event.store, order_id=event.order_id)
    if payment is not None and payment.status in ("pending", "processing"):
        tasks.charge_payment.delay(str(payment.pk), event.store_id)


@on_event("order.cancelled", "order.expired", queue="payments", atomic=False)
def refund_on_order_closed(event: Event) -> None:
    """A captured payment of a cancelled order goes back to the shopper. A payment still in flight
    is handled by its charge task (it skips the charge, or its success triggers the refund)."""
    payment = selectors.payment_for_order(event.store, event.order_id)
    if payment is not None and refunds.payment_needs_refund(payment):
        tasks.refund_payment.delay(str(payment.pk), event.store_id)


def _order_gone(event: Event) -> bool:
    """Publish-time filter: only a charge that landed after its order was cancelled or expired
    needs a refund from here (a cancel that comes later is refunded by `refund_on_order_closed`),
    so one indexed read spares every other paid order a task."""
    return selectors.order_is_gone(event.store_id, event.order_id)


@on_event("payment.processed", queue="payments", atomic=False, when=_order_gone)
def refund_if_order_gone(event: Event) -> None:
    """The charge landed after the order was cancelled (or expired): refund it."""
    payment = selectors.payment_for_order(event.store, event.order_id)
    if payment is not None and refunds.payment_needs_refund(payment):
        tasks.refund_payment.delay(str(payment.pk), event.store_id)


@on_event("payment.retry_requested", queue="orders", atomic=False)
def check_fraud_on_retry_requested(event: Event) -> None:
    """A payment_failed order was sent back to pending (payments.retry): it is screened again,
    exactly as a new order is on `order.created`, and goes on to payment from there."""
    tasks.check_fraud.delay(str(event.order_id), event.store_id)
