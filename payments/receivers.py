"""Event handlers of the payments step. Each is its own Celery task on the payments queue (see
orderflow/core/events.py), run at most once per event; they are atomic=False because they call
the gateway (every step of a charge is idempotent on its own: the Payment row, its gateway key).

The flow from an accepted order to paid is one message: `order.created` is screened and, if the
fraud check approves it, charged in the same task; the payment's success records the order paid,
commits its stock and opens its pick list in one transaction (orders.services.mark_paid)."""

from fraud.events import FraudReviewed
from fraud.rules import APPROVE
from orderflow.core.events import Event, on_event

from . import refunds, selectors, tasks
from .events import PaymentProcessed


@on_event("order.created", "payment.retry_requested", queue="payments", atomic=False)
def screen_and_charge(event: Event) -> None:
    """A new order — or one sent back to be paid again (payments.retry) — is screened; approved,
    it is charged here and now. An order held for review waits for the operator."""
    tasks.screen_then_charge(event.store, event.order_id)


def _approved(event: Event) -> bool:
    return FraudReviewed.of(event).decision == APPROVE


@on_event("fraud.reviewed", queue="payments", atomic=False, when=_approved)
def charge_after_review(event: Event) -> None:
    """An operator cleared an order held for review: charge it."""
    tasks.screen_then_charge(event.store, event.order_id)


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
    so every other paid order costs no task. The event says so (recorded under the order's lock);
    an older row without `order_gone` costs one indexed read."""
    gone = PaymentProcessed.of(event).order_gone
    return selectors.order_is_gone(event.store_id, event.order_id) if gone is None else gone


@on_event("payment.processed", queue="payments", atomic=False, when=_order_gone)
def refund_if_order_gone(event: Event) -> None:
    """The charge landed after the order was cancelled (or expired): refund it."""
    payment = selectors.payment_for_order(event.store, event.order_id)
    if payment is not None and refunds.payment_needs_refund(payment):
        tasks.refund_payment.delay(str(payment.pk), event.store_id)
