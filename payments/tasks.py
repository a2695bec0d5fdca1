"""Celery tasks of the payments step (payments queue): thin — load by id, call a service.

Retries are explicit (`self.retry(countdown=...)`) rather than `autoretry_for`, because the task
must say *before* each retry that it is retrying (`payment.retrying`, for the dashboard and the
alerts) and because the circuit breaker's re-scheduling must not spend the retry budget. The
countdown is computed exactly as Celery's `retry_backoff` / `retry_backoff_max` / `retry_jitter`
would (full jitter) from PAYMENT_RETRY_BACKOFF, PAYMENT_RETRY_BACKOFF_MAX, PAYMENT_RETRY_JITTER;
the budget is PAYMENT_MAX_RETRIES retries, counted on the Payment row (gateway calls made), so a
redelivered task after a worker crash does not get a fresh budget. Every countdown stays far below
the broker's visibility timeout (PAYMENT_RETRY_BACKOFF_MAX ≪ 1 h; a waiting payment's wake-up is
capped at half of it). Waiting for the gateway is not a task held anywhere: one countdown per
waiting payment, and `release_waiting` when the gateway is back.
"""

from celery import shared_task

from orderflow.core.tenancy import Store, use_store

from . import refunds, services
from .models import Payment

PS = Payment.Status


def screen_then_charge(store: Store, order_id: str) -> None:
    """The step after intake, in one task: the fraud check and, when it approves (or an operator
    did), one charge turn — its first attempt begun in the screening's transaction when the charge
    can go out at once. A redelivery finds the order screened and goes on to the charge."""
    _order, payment, started = services.screen_and_start_charge(store=store, order_id=order_id)
    payment = payment or services.ensure_payment(store=store, order_id=order_id)
    if payment is not None and payment.status in (PS.PENDING, PS.PROCESSING):
        charge_now(payment, store, started)


@shared_task(name="payments.screen_and_charge", acks_late=True, ignore_result=True)
def screen_and_charge(order_id: str, store_id: int) -> None:
    """The reconciler's re-drive of an order whose `order.created` message was lost."""
    store = Store.objects.filter(pk=store_id).first()
    if store is not None:
        with use_store(store):
            screen_then_charge(store, order_id)


def charge_now(payment: Payment, store: Store, started: services.Started | None = None) -> str:
    """One charge turn in the calling task (the handler that approved the order): the happy path
    costs no further message. A retry or a wait goes on in `charge_payment`, after its countdown.
    `started`: the first attempt the screening began (services.screen_and_start_charge)."""
    step = _charge_turn(store, str(payment.pk), payment=payment, started=started)
    if step.kind in ("retry", "wait"):
        charge_payment.apply_async((str(payment.pk), store.pk), {"wake": step.wake}, countdown=step.delay)
    return step.outcome


def _charge_turn(
    store: Store,
    payment_id: str,
    slot: str | None = None,
    wake: str | None = None,
    payment: Payment | None = None,
    started: services.Started | None = None,
):
    with use_store(store):
        step = services.attempt_charge(
            store=store, payment_id=payment_id, slot=slot, wake=wake, payment=payment, started=started
        )
    if slot is not None or step.release:
        # a slot came back, or the gateway is back: release the next ones here and now (one queue
        # hop fewer per released payment than asking a release task to do it)
        release_waiting()
    return step


@shared_task(name="payments.charge_payment", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def charge_payment(
    self, payment_id: str, store_id: int, slot: str | None = None, wake: str | None = None
) -> str:
    """A charge that must come back (a retry after its backoff, the wake-up of a payment waiting
    for the gateway, a payment released into a free gateway slot, the reconciler's re-drive).
    `slot`: the gateway slot a release took for this payment; `wake`: this run is the wake-up
    of a waiting payment (see services.attempt_charge)."""
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        services.breaker.release_slot(slot)
        return "missing"
    step = _charge_turn(store, payment_id, slot, wake)
    if step.kind in ("retry", "wait"):
        raise self.retry(args=[payment_id, store_id], kwargs={"wake": step.wake}, countdown=step.delay)
    return step.outcome


@shared_task(name="payments.release_waiting", acks_late=True, ignore_result=True)
def release_waiting() -> int:
    """The gateway is back: charge the longest-waiting payments, as many as there are free gateway
    slots (each charge asks for the next release when it gives its slot back)."""
    released = services.release_waiting()
    for payment_id, store_id, slot in released:
        charge_payment.delay(str(payment_id), store_id, slot=slot)
    return len(released)


@shared_task(name="payments.refund_payment", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def refund_payment(self, payment_id: str, store_id: int, attempt: int = 1) -> str:
    """Refund what remains of the capture (cancel, expiry, the admin's action).
    `attempt` counts gateway calls only: waiting on the open breaker does not spend it."""
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return "missing"
    with use_store(store):
        step = refunds.refund_remaining(store=store, payment_id=payment_id, attempt=attempt)
    if step.kind in ("retry", "wait"):
        next_attempt = attempt + 1 if step.kind == "retry" else attempt
        raise self.retry(args=[payment_id, store_id], kwargs={"attempt": next_attempt}, countdown=step.delay)
    return step.outcome


@shared_task(name="payments.retry_refund", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def retry_refund(self, refund_id: str, store_id: int, attempt: int = 1) -> str:
    """Finish a refund the API left pending (the gateway was down); same key, so at most once."""
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return "missing"
    with use_store(store):
        step = refunds.drive_refund(store=store, refund_id=refund_id, attempt=attempt)
    if step.kind in ("retry", "wait"):
        next_attempt = attempt + 1 if step.kind == "retry" else attempt
        raise self.retry(args=[refund_id, store_id], kwargs={"attempt": next_attempt}, countdown=step.delay)
    return step.outcome


@shared_task(name="payments.probe_gateway", acks_late=True, ignore_result=True)
def probe_gateway() -> str:
    """Beat, every few seconds: close an open breaker once the gateway answers again, and release
    the payments that waited for it."""
    state = services.probe_gateway()
    if state == "closed" and services.waiting_queue_exists():
        release_waiting.delay()
    return state
