"""Celery tasks of the payments step (payments queue): thin — load by id, call a service.

Retries are explicit (`self.retry(countdown=...)`) rather than `autoretry_for`, because the task
must say *before* each retry that it is retrying (`payment.retrying`, for the dashboard and the
alerts) and because the circuit breaker's re-scheduling must not spend the retry budget. The
countdown is computed exactly as Celery's `retry_backoff` / `retry_backoff_max` / `retry_jitter`
would (full jitter) from PAYMENT_RETRY_BACKOFF, PAYMENT_RETRY_BACKOFF_MAX, PAYMENT_RETRY_JITTER;
the budget is PAYMENT_MAX_RETRIES retries, counted on the Payment row (gateway calls made), so a
redelivered task after a worker crash does not get a fresh budget. Every countdown stays far below
the broker's visibility timeout (PAYMENT_RETRY_BACKOFF_MAX, BREAKER_COOLDOWN_SECONDS ≪ 1 h).
"""

from celery import shared_task

from orderflow.core.tenancy import Store, use_store

from . import reconciler, refunds, services


@shared_task(name="payments.check_fraud", acks_late=True, ignore_result=True)
def check_fraud(order_id: str, store_id: int) -> None:
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return
    with use_store(store):
        services.check_fraud(store=store, order_id=order_id)


@shared_task(name="payments.charge_payment", bind=True, acks_late=True, ignore_result=True, max_retries=None)
def charge_payment(self, payment_id: str, store_id: int) -> str:
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return "missing"
    with use_store(store):
        step = services.attempt_charge(store=store, payment_id=payment_id)
    if step.kind in ("retry", "wait"):
        raise self.retry(countdown=step.delay)
    return step.outcome


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
    """Beat, every few seconds: close an open breaker once the gateway answers again."""
    return services.probe_gateway()


@shared_task(name="payments.reconcile_payments", acks_late=True, ignore_result=True)
def reconcile_payments() -> dict[str, int]:
    """Beat, every minute: re-drive payments and refunds whose task message was lost."""
    found = services.reconcile_payments()
    for payment_id, store_id in found["charge"]:
        charge_payment.delay(str(payment_id), store_id)
    for payment_id, store_id in found["refund"]:
        refund_payment.delay(str(payment_id), store_id)
    return {name: len(rows) for name, rows in found.items()}


@shared_task(name="payments.reconcile_stuck_orders", acks_late=True, ignore_result=True)
def reconcile_stuck_orders() -> dict[str, int]:
    """Beat, every minute: repair or expire orders that stopped moving (see payments.reconciler);
    includes the payment/refund re-drive of `reconcile_payments`."""
    return reconciler.reconcile_stuck_orders()
