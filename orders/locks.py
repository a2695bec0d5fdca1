"""Where an order is locked, in one place (in the spirit of Saleor's `lock_objects.py`).

Every write that moves an order, or a thing hanging off it (its payment, its fulfillment, its
refunds), first takes the order's row lock here, then the dependent row's: always in that order,
so two paths never deadlock, and a cancel or an expiry (which take the same lock) is never
overtaken by a charge or a pick that read the order before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orderflow.core.errors import NotFound
from orderflow.core.tenancy import Store

from .models import Order


def lock_order(store: Store, order_id: Any) -> Order | None:
    """The order, locked FOR UPDATE until the end of the caller's transaction (None if the store
    has no such order)."""
    order = Order.all_stores.select_for_update().filter(store=store, pk=order_id).first()
    if order is not None:
        order.store = store
    return order


def lock_order_or_404(store: Store, order_id: Any) -> Order:
    order = lock_order(store, order_id)
    if order is None:
        raise NotFound("No such order.")
    return order


def lock_next_orders(
    store: Store, ids: Iterable[Any], *, statuses: Iterable[str] | None = None
) -> list[Order]:
    """The given orders that nobody else holds (FOR UPDATE SKIP LOCKED), still in `statuses`:
    for sweeps, which must never wait behind a live task or act twice beside a twin sweep."""
    qs = Order.all_stores.select_for_update(skip_locked=True).filter(store=store, pk__in=list(ids))
    if statuses is not None:
        qs = qs.filter(status__in=list(statuses))
    orders = list(qs.order_by("created_at"))
    for order in orders:
        order.store = store
    return orders
