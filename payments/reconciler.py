"""Payments' reconciler sweep (run by `core.reconcile`): the steps of the flow payments drives whose
message was lost, and the judgement of whether an unpaid order may expire.

Per store (every order it acts on is taken with `SELECT ... FOR UPDATE SKIP LOCKED` through
`orders.locks.lock_next_orders`, in its own transaction, and re-checked):

1. Pending with no fraud check for RECONCILE_STUCK_AFTER_SECONDS (no `fraud.checked`; the
   `order.created` handler never ran or its task was lost): `payments.screen_and_charge` is
   enqueued — the handler's work as a task of its own, a no-op once the order left pending. At
   most once per window per order (the last `order.reconciled` says when).
2. payment_processing with no Payment row for that long (the `order.payment_processing` handler
   was lost): the Payment is opened (its gateway key fixed) and `payments.charge_payment` enqueued.

Then, across stores, `services.reconcile_payments` (payments whose charge task was lost, captured
payments of cancelled/expired orders never refunded) is re-driven, each with its event, and so are
refunds left pending by a gateway outage whose retry message was lost (`refund_retry_requeued`).
While the queues are deep (`Sweep.behind`, the backlog rule) none of this runs: it only re-drives.

Expiry is orders' sweep, but whether a payment may still charge is payments' knowledge: this
module registers the expiry guard (`orders.reconciler.guard_expiry`) — `expiry_blocker` vetoes,
and an order that did expire has its open payment closed in the same transaction
(`payment.cancelled`), so nothing can charge it afterwards.

Orders are read only through orders' selectors and locks; payments' own rows directly.
`order.reconciled` problems/actions here: fraud_check_missing/requeued,
payment_missing/payment_started, payment_stalled/requeued, refund_missing/refund_requeued.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from orderflow.core.events import Event, HandledEvent
from orderflow.core.reconcile import Sweep, age_seconds, reconciler, send_after_commit
from orderflow.core.tenancy import Store
from orders import selectors as order_selectors
from orders import services as order_services
from orders.locks import lock_next_orders
from orders.reconciler import guard_expiry, record

from . import refunds, services
from .models import Payment, PaymentAttempt

log = logging.getLogger("orderflow.reconciler")

OS = order_services.OS
PS = Payment.Status
FRAUD_HANDLER = "payments.receivers.screen_and_charge"


# ----------------------------------------------------------------------------------- expiry


def expiry_blocker(payment: Payment | None, *, now: datetime) -> str | None:
    """Why this payment forbids expiring its order now, or None when the order may expire.

    The rule: an order never expires under a payment that may still charge.
    * succeeded/(partially_)refunded: the shopper paid — never expire (`payment_succeeded`).
    * pending/processing touched within the payments' own stuck bound
      (`services.stuck_after_seconds()`), or with a retry due within it: a task is on it right now
      (`payment_in_flight`) — the exact complement of what `reconcile_payments` calls stuck.
    * a gateway call whose answer never came (attempt timed out, dropped connection, or still
      marked in flight): it may have charged (`payment_outcome_unknown`). The re-driven charge
      asks again with the same key and settles it — paid, or payment_failed — instead.
    * waiting for the gateway inside its payment window (`payment_waiting`): its window, not the
      order-expiry window, ends it.
    * failed, or stale with only definite answers (none, 5xx, breaker open): may expire."""
    if payment is None or payment.status == PS.FAILED:
        return None
    if payment.status in Payment.REFUNDABLE_STATUSES or payment.status == PS.REFUNDED:
        return "payment_succeeded"
    if payment.waiting_since is not None and now < services.window_ends_at(payment):
        return "payment_waiting"  # waiting out a gateway outage inside its payment window
    live_since = now - timedelta(seconds=services.stuck_after_seconds())
    if payment.updated_at >= live_since or (payment.next_retry_at and payment.next_retry_at >= live_since):
        return "payment_in_flight"
    unknown = PaymentAttempt.all_stores.filter(payment=payment).filter(
        Q(outcome__in=[PaymentAttempt.Outcome.TIMEOUT, PaymentAttempt.Outcome.IN_FLIGHT])
        | Q(outcome=PaymentAttempt.Outcome.TRANSIENT_ERROR, error_code="connection_error")
    )
    if unknown.exists():
        return "payment_outcome_unknown"
    return None


def _payment_of(store: Store, order: Any) -> Payment | None:
    payment = Payment.all_stores.filter(store=store, order_id=order.pk).first()
    if payment is not None:
        payment.store = store
    return payment


def _expiry_blocker(store: Store, order: Any, now: datetime) -> str | None:
    return expiry_blocker(_payment_of(store, order), now=now)


def _close_payment_of_expired(store: Store, order: Any) -> None:
    payment = _payment_of(store, order)
    if payment is not None and payment.status not in Payment.FINAL_STATUSES:
        services.abandon_payment(payment, reason="order expired")


guard_expiry("payments", blocker=_expiry_blocker, on_expired=_close_payment_of_expired)


# ------------------------------------------------------------------------- lost fraud check


def _recently_requeued(store: Store, order_id: Any, since: datetime):
    return Event.all_stores.filter(
        store=store,
        order_id=order_id,
        topic="order.reconciled",
        data__problem="fraud_check_missing",
        created_at__gte=since,
    )


def requeue_fraud_checks(store: Store, sweep: Sweep) -> None:
    events = Event.all_stores.filter(store=store, order_id=OuterRef("pk"))
    candidates = list(
        order_selectors.orders_at_rest(store, [OS.PENDING], created_before=sweep.cutoff)
        .filter(~Exists(events.filter(topic="fraud.checked")))
        .filter(~Exists(_recently_requeued(store, OuterRef("pk"), sweep.cutoff)))
        .values_list("pk", flat=True)[: sweep.batch]
    )
    for order_id in candidates:
        with transaction.atomic():
            [order] = lock_next_orders(store, [order_id], statuses=[OS.PENDING]) or [None]
            if order is None:
                continue
            if _recently_requeued(store, order.pk, sweep.cutoff).exists():
                continue  # another sweep did it while we were listing
            created = (
                Event.all_stores.filter(store=store, order_id=order.pk, topic="order.created")
                .values_list("pk", "published_at")
                .first()
            )
            handler_ran = (
                bool(created)
                and HandledEvent.objects.filter(event_id=created[0], handler=FRAUD_HANDLER).exists()
            )
            record(
                store,
                order.pk,
                problem="fraud_check_missing",
                action="requeued",
                task="payments.screen_and_charge",
                handler_ran=handler_ran,
                event_published=bool(created and created[1]),
                stuck_seconds=age_seconds(order.created_at, sweep.now),
            )
            send_after_commit("payments.screen_and_charge", str(order.pk), store.pk)
            sweep.count("fraud_check_requeued")


# ------------------------------------------------------------------- lost payment handler


def start_missing_payments(store: Store, sweep: Sweep) -> None:
    candidates = list(
        order_selectors.orders_at_rest(store, [OS.PAYMENT_PROCESSING], updated_before=sweep.cutoff)
        .filter(~Exists(Payment.all_stores.filter(order=OuterRef("pk"))))
        .values_list("pk", flat=True)[: sweep.batch]
    )
    for order_id in candidates:
        with transaction.atomic():
            [order] = lock_next_orders(store, [order_id], statuses=[OS.PAYMENT_PROCESSING]) or [None]
            if order is None or Payment.all_stores.filter(order_id=order.pk).exists():
                continue
            payment = services.open_payment(order=order)
            record(
                store,
                order.pk,
                problem="payment_missing",
                action="payment_started",
                payment_id=str(payment.pk),
                task="payments.charge_payment",
                stuck_seconds=age_seconds(order.updated_at, sweep.now),
            )
            send_after_commit("payments.charge_payment", str(payment.pk), store.pk)
            sweep.count("payment_started")


# ---------------------------------------------------------------------- payments and refunds


def redrive_refunds(sweep: Sweep) -> None:
    """A refund the API left pending (the gateway was down) whose retry message was lost: re-drive
    it; its gateway key makes a second try refund at most once."""
    for pk, store_id, attempt in refunds.stuck_refunds(
        older_than_seconds=services.stuck_after_seconds(), batch=sweep.batch
    ):
        current_app.send_task("payments.retry_refund", args=[str(pk), store_id], kwargs={"attempt": attempt})
        sweep.count("refund_retry_requeued")


def redrive_payments(sweep: Sweep) -> None:
    """`reconcile_payments` says which charges/refunds lost their task; re-drive each, with its
    event. The tasks are idempotent (same gateway key; final states left alone)."""
    found = services.reconcile_payments(batch=sweep.batch)
    jobs = [("charge", pk) for pk, _ in found["charge"]] + [("refund", pk) for pk, _ in found["refund"]]
    if not jobs:
        return
    payments = {
        p.pk: p for p in Payment.all_stores.select_related("store").filter(pk__in=[pk for _, pk in jobs])
    }
    for kind, pk in jobs:
        payment = payments.get(pk)
        if payment is None:
            continue
        order_status = order_selectors.get_order(payment.store, payment.order_id).status
        with transaction.atomic():
            if kind == "charge":
                record(
                    payment.store, payment.order_id, problem="payment_stalled", action="requeued",
                    payment_id=str(pk), payment_status=payment.status, attempts=payment.attempts,
                    order_status=order_status, task="payments.charge_payment",
                )  # fmt: skip
                send_after_commit("payments.charge_payment", str(pk), payment.store_id)
                sweep.count("payment_requeued")
            else:
                record(
                    payment.store, payment.order_id, problem="refund_missing", action="refund_requeued",
                    payment_id=str(pk), order_status=order_status, task="payments.refund_payment",
                )  # fmt: skip
                send_after_commit("payments.refund_payment", str(pk), payment.store_id)
                sweep.count("refund_requeued")


@reconciler("payments", order=30)
def sweep_payments(sweep: Sweep) -> None:
    """Every step here re-drives: all of it waits while the queues are deep."""
    if sweep.behind:
        return
    sweep.each_store(requeue_fraud_checks, start_missing_payments)
    for step in (redrive_payments, redrive_refunds):
        try:
            step(sweep)
        except Exception:  # the other re-drive still runs
            log.exception("reconciler: %s failed", step.__name__)
            sweep.count("errors")
