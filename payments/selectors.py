"""Reads of the payments step (store first)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet

from orderflow.core.tenancy import Store
from orders.models import Order

from .models import Payment, PaymentAttempt


def payment_for_order(store: Store, order_id: uuid.UUID | str | None) -> Payment | None:
    if order_id is None:
        return None
    return Payment.all_stores.for_store(store).select_related("order").filter(order_id=order_id).first()


def payments(store: Store) -> QuerySet[Payment]:
    return Payment.all_stores.for_store(store).select_related("order")


def attempts(store: Store, payment: Payment) -> QuerySet[PaymentAttempt]:
    return PaymentAttempt.all_stores.for_store(store).filter(payment=payment).order_by("number")


def order_is_gone(store_id: int, order_id: Any) -> bool:
    """Was the order cancelled or expired? (one indexed read, for a publish-time filter)"""
    return Order.all_stores.filter(
        store_id=store_id, pk=order_id, status__in=("cancelled", "expired")
    ).exists()
