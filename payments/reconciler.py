"""The stuck-order reconciler (beat, every minute): finds orders that stopped moving and repairs
them through the idempotent paths, or compensates them, with an `order.reconciled` event (and so
an alert) each time. It lives in payments because it must judge payments and may only call
upstream services (orders, inventory); fulfillment's own stalls are fulfillment's concern.

What it does, per store (store-leading indexes; every query batch-limited; every order it acts on
is taken with `SELECT ... FOR UPDATE SKIP LOCKED` in its own transaction and re-checked, so two
reconcilers — or a reconciler and a live task holding the order — never act twice):

1. Expiry (Saleor's `expire_orders`): pending / fraud_review / payment_processing orders older
   than the store's window (`order_expiry_minutes`, else ORDER_EXPIRY_MINUTES; 0 = never) expire
   (`orders.services.expire`: stock released, `order.expired`) unless their payment may
   still charge — see `expiry_blocker`. A payment left pending/processing is closed with it
   (`payment.cancelled`), so nothing can charge the expired order afterwards.
2. Pending with no fraud check for RECONCILE_STUCK_AFTER_SECONDS (no `fraud.checked`; the
   `order.created` handler never ran or its task was lost): `payments.screen_and_charge` is
   enqueued — the handler's work as a task of its own, a no-op once the order left pending. At most once per
   window per order (the last `order.reconciled` says when).
3. payment_processing with no Payment row for that long (the `order.payment_processing` handler
   was lost): the Payment is opened (its gateway key fixed) and `payments.charge_payment` enqueued.
4. Reservations no order should hold: an order that is paid (or later) still holding reserved
   units gets them committed (`commit_stock`); an order that will never be paid (payment_failed,
   rejected, cancelled, expired) gets them released (`release_stock`). Both are idempotent and
   ledger-driven. Found cheaply: a product is suspect only when its level holds more reserved
   units than the live (pre-payment) orders hold in the ledger — one statement, no history scan.

While the payments queue holds more than RECONCILE_BACKLOG_LIMIT messages, steps 2, 3 and the
payment re-drive wait: a backlog is not a lost message, and re-driving it would add duplicates
(and an alert per order) to a queue that is already behind.

Then, across stores, `services.reconcile_payments` (payments whose charge task was lost, captured
payments of cancelled/expired orders never refunded) is re-driven here, each with its event; its
own old beat entry is retired by migration 0003 so one job owns the sweep; so are refunds left
pending by a gateway outage whose retry message was lost (`refund_retry_requeued`).

`order.reconciled` data: {problem, action, ...details}. Problems/actions:
fraud_check_missing/requeued, payment_missing/payment_started, payment_stalled/requeued,
refund_missing/refund_requeued, stock_not_committed/committed, reservation_leaked/released.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import StockLevel, StockMovement
from orderflow.core.events import Event, HandledEvent, emit
from orderflow.core.tenancy import Store
from orders import services as order_services
from orders.events import OrderReconciled
from orders.models import Order

from . import refunds, services
from .models import Payment, PaymentAttempt

log = logging.getLogger("orderflow.reconciler")

ACTOR = "reconciler"
OS = Order.Status
PS = Payment.Status
LIVE = (OS.PENDING, OS.FRAUD_REVIEW, OS.PAYMENT_PROCESSING)  # may legitimately hold reservations
PAID_OR_LATER = (OS.PAID, OS.FULFILLING, OS.READY_TO_SHIP, OS.SHIPPED, OS.DELIVERED)
NEVER_PAID = (OS.PAYMENT_FAILED, OS.REJECTED, OS.CANCELLED, OS.EXPIRED)
FRAUD_HANDLER = "payments.receivers.screen_and_charge"


def stuck_after_seconds() -> float:
    return float(settings.RECONCILE_STUCK_AFTER_SECONDS)


def reconcile_stuck_orders(
    *, now: datetime | None = None, stuck_after: float | None = None, batch: int | None = None
) -> dict[str, int]:
    """One sweep over every store; returns what it did, by kind (for the task's result/logs)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=stuck_after if stuck_after is not None else stuck_after_seconds())
    batch = batch or settings.RECONCILE_BATCH
    counts: Counter[str] = Counter()
    backlog = broker_backlog(*settings.RECONCILE_BACKLOG_QUEUES)
    behind = (
        settings.RECONCILE_BACKLOG_LIMIT > 0
        and backlog is not None
        and backlog > settings.RECONCILE_BACKLOG_LIMIT
    )
    steps = [_expire_unpaid, _requeue_fraud_checks, _start_missing_payments, _repair_reservations]
    if behind:
        # A deep queue means the messages are waiting, not lost: re-driving them now would only
        # add duplicates (and an alert per order) to the queue that is already behind. A message
        # that really was lost is re-driven by the first sweep after the queue has caught up.
        log.warning("reconciler: %s messages queued on %s; re-drives wait until they catch up",
                    backlog, ", ".join(settings.RECONCILE_BACKLOG_QUEUES))  # fmt: skip
        steps = [_expire_unpaid, _repair_reservations]
        counts["skipped_backlog"] = backlog
    for store in Store.objects.order_by("pk").iterator():
        for step in steps:
            try:
                step(store, now=now, cutoff=cutoff, batch=batch, counts=counts)
            except Exception:  # one store's trouble must not stop the sweep for the others
                log.exception("reconciler step %s failed for store %s", step.__name__, store.pk)
                counts["errors"] += 1
    try:
        if not behind:
            _redrive_payments(batch=batch, counts=counts)
            _redrive_refunds(batch=batch, counts=counts)
    except Exception:
        log.exception("reconciler: payment re-drive failed")
        counts["errors"] += 1
    return dict(counts)


# ---------------------------------------------------------------------------------- helpers


def broker_backlog(*queues: str) -> int | None:
    """Messages waiting on these broker queues together (None if the broker cannot say for any).
    A queue nobody has declared yet is refused by a passive declare: it holds nothing."""
    counts = []
    try:
        with current_app.connection_for_read() as conn:
            channel = conn.default_channel
            for queue in queues:
                try:
                    counts.append(int(channel.queue_declare(queue=queue, passive=True).message_count))
                except conn.channel_errors:
                    counts.append(0)
    except Exception:
        return None
    return sum(counts)


def _reconciled(store: Store, order: Order | Any, *, problem: str, action: str, **details: Any) -> None:
    order_id = getattr(order, "pk", order)
    emit(
        OrderReconciled(problem=problem, action=action, **details),
        store=store,
        order_id=order_id,
        subject_type="order",
        subject_id=str(order_id),
        actor=ACTOR,
    )


def _after_commit(task_name: str, *args: Any) -> None:
    """Enqueue (by name: tasks.py imports this module) once the repair's transaction committed; a
    dead broker is logged, not raised (the next sweep tries again)."""
    transaction.on_commit(partial(current_app.send_task, task_name, args=list(args)), robust=True)


def _lock(store: Store, order_id: Any, statuses: tuple[str, ...] | None = None) -> Order | None:
    """The order, locked — or None when another transaction holds it (it is being worked on)."""
    qs = Order.all_stores.select_for_update(skip_locked=True).filter(store=store, pk=order_id)
    if statuses is not None:
        qs = qs.filter(status__in=statuses)
    order = qs.first()
    if order is not None:
        order.store = store
    return order


def _age(since: datetime, now: datetime) -> int:
    return int((now - since).total_seconds())


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


def _expire_unpaid(store: Store, *, now: datetime, cutoff: datetime, batch: int, counts: Counter) -> None:
    minutes = order_services.expiry_minutes(store)
    if minutes <= 0:
        return
    expire_before = now - timedelta(minutes=minutes)
    candidates = list(
        Order.all_stores.filter(
            store=store, status__in=order_services.EXPIRABLE, created_at__lt=expire_before
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    for order_id in candidates:
        with transaction.atomic():
            order = _lock(store, order_id, tuple(order_services.EXPIRABLE))
            if order is None:
                continue
            payment = Payment.all_stores.filter(store=store, order=order).first()
            blocker = expiry_blocker(payment, now=now)
            if blocker is not None:
                counts[f"expiry_deferred_{blocker}"] += 1
                continue
            order_services.expire(
                store=store, order=order, reason=f"not paid within {minutes} minutes", actor=ACTOR
            )
            if payment is not None and payment.status not in Payment.FINAL_STATUSES:
                payment.store = store
                services._abandon(payment, reason="order expired")
            counts["expired"] += 1


# ------------------------------------------------------------------------- lost fraud check


def _requeue_fraud_checks(
    store: Store, *, now: datetime, cutoff: datetime, batch: int, counts: Counter
) -> None:
    events = Event.all_stores.filter(store=store, order_id=OuterRef("pk"))
    candidates = list(
        Order.all_stores.filter(store=store, status=OS.PENDING, created_at__lt=cutoff)
        .filter(~Exists(events.filter(topic="fraud.checked")))
        .filter(
            ~Exists(
                events.filter(
                    topic="order.reconciled", data__problem="fraud_check_missing", created_at__gte=cutoff
                )
            )
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    for order_id in candidates:
        with transaction.atomic():
            order = _lock(store, order_id, (OS.PENDING,))
            if order is None:
                continue
            if Event.all_stores.filter(
                store=store,
                order_id=order.pk,
                topic="order.reconciled",
                data__problem="fraud_check_missing",
                created_at__gte=cutoff,
            ).exists():  # another sweep did it while we were listing
                continue
            created = (
                Event.all_stores.filter(store=store, order_id=order.pk, topic="order.created")
                .values_list("pk", "published_at")
                .first()
            )
            handler_ran = (
                bool(created)
                and HandledEvent.objects.filter(event_id=created[0], handler=FRAUD_HANDLER).exists()
            )
            _reconciled(
                store,
                order,
                problem="fraud_check_missing",
                action="requeued",
                task="payments.screen_and_charge",
                handler_ran=handler_ran,
                event_published=bool(created and created[1]),
                stuck_seconds=_age(order.created_at, now),
            )
            _after_commit("payments.screen_and_charge", str(order.pk), store.pk)
            counts["fraud_check_requeued"] += 1


# ------------------------------------------------------------------- lost payment handler


def _start_missing_payments(
    store: Store, *, now: datetime, cutoff: datetime, batch: int, counts: Counter
) -> None:
    candidates = list(
        Order.all_stores.filter(store=store, status=OS.PAYMENT_PROCESSING, updated_at__lt=cutoff)
        .filter(~Exists(Payment.all_stores.filter(order=OuterRef("pk"))))
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch]
    )
    for order_id in candidates:
        with transaction.atomic():
            order = _lock(store, order_id, (OS.PAYMENT_PROCESSING,))
            if order is None or Payment.all_stores.filter(order=order).exists():
                continue
            payment = services.open_payment(order=order)
            _reconciled(
                store,
                order,
                problem="payment_missing",
                action="payment_started",
                payment_id=str(payment.pk),
                task="payments.charge_payment",
                stuck_seconds=_age(order.updated_at, now),
            )
            _after_commit("payments.charge_payment", str(payment.pk), store.pk)
            counts["payment_started"] += 1


# ---------------------------------------------------------------------------- reservations


def _suspect_products(store: Store) -> list[int]:
    """Products whose level holds more reserved units than the live orders hold in the ledger.

    One statement (one snapshot, so an order moving meanwhile cannot fake a mismatch), reading the
    ledger only through the live orders (store, status index → movement (store, order_id) index)."""
    level, movement, order = StockLevel._meta.db_table, StockMovement._meta.db_table, Order._meta.db_table
    live = ", ".join(["%s"] * len(LIVE))
    sql = f"""
        SELECT l.product_id
          FROM {level} l
          LEFT JOIN (
                SELECT m.product_id, SUM(m.reserved_delta) AS held
                  FROM {order} o
                  JOIN {movement} m ON m.store_id = o.store_id AND m.order_id = o.id
                 WHERE o.store_id = %s AND o.status IN ({live})
                 GROUP BY m.product_id
          ) h ON h.product_id = l.product_id
         WHERE l.store_id = %s AND l.reserved > COALESCE(h.held, 0)
    """  # noqa: S608 - table names from model metadata, values bound
    with connection.cursor() as cur:
        cur.execute(sql, [store.pk, *LIVE, store.pk])
        return [row[0] for row in cur.fetchall()]


def _repair_reservations(
    store: Store, *, now: datetime, cutoff: datetime, batch: int, counts: Counter
) -> None:
    suspects = _suspect_products(store)
    if not suspects:
        return
    live_orders = Order.all_stores.filter(store=store, status__in=LIVE).values("pk")
    holders = list(
        StockMovement.all_stores.filter(store=store, product_id__in=suspects, order_id__isnull=False)
        .exclude(order_id__in=live_orders)
        .values("order_id")
        .annotate(held=Sum("reserved_delta"))
        .filter(held__gt=0)
        .order_by("order_id")
        .values_list("order_id", flat=True)[:batch]
    )
    for order_id in holders:
        with transaction.atomic():
            order = _lock(store, order_id)
            if order is None:
                if not Order.all_stores.filter(store=store, pk=order_id).exists():
                    log.warning(
                        "store %s: units reserved for order %s, which does not exist", store.pk, order_id
                    )
                    counts["reservation_without_order"] += 1
                continue  # else held by another transaction: next sweep
            if order.status in LIVE or order.updated_at >= cutoff:
                continue  # legitimately holding, or too fresh to judge
            if order.status in PAID_OR_LATER:
                units = inventory_services.commit_stock(store=store, order_id=order.pk, actor=ACTOR)
                if units:
                    _reconciled(
                        store, order, problem="stock_not_committed", action="committed",
                        units=units, status=order.status,
                    )  # fmt: skip
                    counts["stock_committed"] += 1
            elif order.status in NEVER_PAID:
                units = inventory_services.release_stock(
                    store=store, order_id=order.pk, actor=ACTOR, reason=f"leaked reservation ({order.status})"
                )
                if units:
                    _reconciled(
                        store, order, problem="reservation_leaked", action="released",
                        units=units, status=order.status,
                    )  # fmt: skip
                    counts["reservation_released"] += 1


# -------------------------------------------------------------------------------- payments


def _redrive_refunds(*, batch: int, counts: Counter) -> None:
    """A refund the API left pending (the gateway was down) whose retry message was lost: re-drive
    it; its gateway key makes a second try refund at most once."""
    for pk, store_id, attempt in refunds.stuck_refunds(
        older_than_seconds=services.stuck_after_seconds(), batch=batch
    ):
        current_app.send_task("payments.retry_refund", args=[str(pk), store_id], kwargs={"attempt": attempt})
        counts["refund_retry_requeued"] += 1


def _redrive_payments(*, batch: int, counts: Counter) -> None:
    """`reconcile_payments` says which charges/refunds lost their task; re-drive each, with its
    event. The tasks are idempotent (same gateway key; final states left alone)."""
    found = services.reconcile_payments(batch=batch)
    jobs = [("charge", pk) for pk, _ in found["charge"]] + [("refund", pk) for pk, _ in found["refund"]]
    if not jobs:
        return
    payments = {
        p.pk: p
        for p in Payment.all_stores.select_related("store", "order").filter(pk__in=[pk for _, pk in jobs])
    }
    for kind, pk in jobs:
        payment = payments.get(pk)
        if payment is None:
            continue
        with transaction.atomic():
            if kind == "charge":
                _reconciled(
                    payment.store, payment.order_id, problem="payment_stalled", action="requeued",
                    payment_id=str(pk), payment_status=payment.status, attempts=payment.attempts,
                    order_status=payment.order.status, task="payments.charge_payment",
                )  # fmt: skip
                _after_commit("payments.charge_payment", str(pk), payment.store_id)
                counts["payment_requeued"] += 1
            else:
                _reconciled(
                    payment.store, payment.order_id, problem="refund_missing", action="refund_requeued",
                    payment_id=str(pk), order_status=payment.order.status, task="payments.refund_payment",
                )  # fmt: skip
                _after_commit("payments.refund_payment", str(pk), payment.store_id)
                counts["refund_requeued"] += 1
