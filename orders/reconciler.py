"""Orders' reconciler sweep (run by `core.reconcile`): unpaid orders that outlived their window, and
stock reservations no order should hold any more.

1. Expiry (Saleor's `expire_orders`): pending / fraud_review / payment_processing orders older
   than the store's window (`order_expiry_minutes`, else ORDER_EXPIRY_MINUTES; 0 = never) expire
   (`services.expire`: stock released, `order.expired`) — unless an app that knows better says the
   order may not expire yet. Whether a payment may still charge is payments' knowledge, and
   payments is to the right of orders (orders may not import it), so payments registers an
   *expiry guard* here (`guard_expiry`): `blocker(store, order, now)` says why not (counted as
   `expiry_deferred_<why>`), `on_expired(store, order)` closes what may no longer run (a payment
   left pending) in the expiry's own transaction. The judgement stays where the knowledge is; the
   dependency still points left.
2. Reservations no order should hold: an order that is paid (or later) still holding reserved
   units gets them committed (`commit_stock`); one that will never be paid (payment_failed,
   rejected, cancelled, expired) gets them released (`release_stock`). Both are idempotent and
   ledger-driven.

Why the reservation sweep is orders' and not inventory's: the judgement needs the order's status,
and the order's lock (so a live task moving the order is never overtaken), both orders' own;
inventory may not import orders. Orders asks inventory only public questions
(`inventory.selectors.overheld_products` / `reservation_holders`, handing it the ids of its live
orders as a subquery) and repairs through inventory's services, so every dependency points left
and no app reads another's tables.

Every order acted on is taken with `SELECT ... FOR UPDATE SKIP LOCKED` (`locks.lock_next_orders`)
in its own transaction and re-checked, so two sweeps — or a sweep and a live task holding the
order — never act twice. Each repair is an `order.reconciled` event (problems
stock_not_committed/committed, reservation_leaked/released) or an `order.expired` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from orderflow.core.events import emit
from orderflow.core.reconcile import ACTOR, Sweep, reconciler
from orderflow.core.tenancy import Store

from . import services
from .events import OrderReconciled
from .locks import lock_next_orders
from .models import Order

log = logging.getLogger("orderflow.reconciler")

OS = Order.Status


def record(store: Store, order_id: Any, *, problem: str, action: str, **details: Any) -> None:
    """The `order.reconciled` event of one repair (in the repair's transaction), whichever app's
    sweep repaired it: the topic is the order's."""
    emit(
        OrderReconciled(problem=problem, action=action, **details),
        store=store,
        order_id=order_id,
        subject_type="order",
        subject_id=str(order_id),
        actor=ACTOR,
    )


def _onward(start: str, *, avoiding: str) -> frozenset:
    """`start` and every status the transition table reaches from it without passing `avoiding`."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in Order.TRANSITIONS[todo.pop()]:
            if nxt != avoiding and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return frozenset(seen)


# Derived from the transition table: the orders that may still be paid (and so legitimately hold
# reservations) are those that can still expire; the paid ones are PAID and what follows it short
# of a cancellation; every other status is an order that will never be paid.
LIVE = services.EXPIRABLE
PAID_OR_LATER = _onward(OS.PAID, avoiding=OS.CANCELLED)
NEVER_PAID = frozenset(Order.TRANSITIONS) - LIVE - PAID_OR_LATER


# ------------------------------------------------------------------------------ expiry guards


@dataclass(frozen=True)
class ExpiryGuard:
    blocker: Callable[[Store, Order, datetime], str | None]
    on_expired: Callable[[Store, Order], None] | None = None


_GUARDS: dict[str, ExpiryGuard] = {}


def guard_expiry(
    app: str,
    *,
    blocker: Callable[[Store, Order, datetime], str | None],
    on_expired: Callable[[Store, Order], None] | None = None,
) -> None:
    """Let `app` veto an expiry (`blocker` returns why the order may not expire now, else None)
    and close its own state when the order expired (`on_expired`). Both run with the order locked,
    inside the expiry's transaction. One guard per app."""
    _GUARDS[app] = ExpiryGuard(blocker, on_expired)


def expire_unpaid(store: Store, sweep: Sweep) -> None:
    minutes = services.expiry_minutes(store)
    if minutes <= 0:
        return
    expire_before = sweep.now - timedelta(minutes=minutes)
    candidates = list(
        Order.all_stores.filter(store=store, status__in=LIVE, created_at__lt=expire_before)
        .order_by("created_at")
        .values_list("pk", flat=True)[: sweep.batch]
    )
    guards = list(_GUARDS.values())
    for order_id in candidates:
        with transaction.atomic():
            [order] = lock_next_orders(store, [order_id], statuses=LIVE) or [None]
            if order is None:
                continue  # moved on, or being worked on right now: the next sweep looks again
            blocker = next((why for g in guards if (why := g.blocker(store, order, sweep.now))), None)
            if blocker is not None:
                sweep.count(f"expiry_deferred_{blocker}")
                continue
            reason = f"not paid within {minutes} minutes"
            services.expire(store=store, order=order, reason=reason, actor=ACTOR)
            for guard in guards:
                if guard.on_expired is not None:
                    guard.on_expired(store, order)
            sweep.count("expired")


# ---------------------------------------------------------------------------- reservations


def repair_reservations(store: Store, sweep: Sweep) -> None:
    live = Order.all_stores.filter(store=store, status__in=LIVE).values("pk")
    suspects = inventory_selectors.overheld_products(store, holding=live)
    if not suspects:
        return
    holders = inventory_selectors.reservation_holders(
        store, products=suspects, excluding=live, batch=sweep.batch
    )
    for order_id in holders:
        with transaction.atomic():
            [order] = lock_next_orders(store, [order_id]) or [None]
            if order is None:
                if not Order.all_stores.filter(store=store, pk=order_id).exists():
                    log.warning(
                        "store %s: units reserved for order %s, which does not exist", store.pk, order_id
                    )
                    sweep.count("reservation_without_order")
                continue  # else held by another transaction: the next sweep
            if order.status in LIVE or order.updated_at >= sweep.cutoff:
                continue  # legitimately holding, or too fresh to judge
            if order.status in PAID_OR_LATER:
                units = inventory_services.commit_stock(store=store, order_id=order.pk, actor=ACTOR)
                if units:
                    record(store, order.pk, problem="stock_not_committed", action="committed",
                           units=units, status=order.status)  # fmt: skip
                    sweep.count("stock_committed")
            elif order.status in NEVER_PAID:
                units = inventory_services.release_stock(
                    store=store, order_id=order.pk, actor=ACTOR, reason=f"leaked reservation ({order.status})"
                )
                if units:
                    record(store, order.pk, problem="reservation_leaked", action="released",
                           units=units, status=order.status)  # fmt: skip
                    sweep.count("reservation_released")


@reconciler("orders", order=10)
def sweep_orders(sweep: Sweep) -> None:
    """Expiry and leaked reservations: no re-drive, so they run even while the queues are deep."""
    sweep.each_store(expire_unpaid, repair_reservations)
