"""Reads of the payments step (store first)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from orderflow.core.tenancy import Store
from orders import selectors as order_selectors

from . import breaker, services
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
    """Was the order cancelled or expired? (orders' one indexed read, for a publish-time filter)"""
    return order_selectors.order_is_gone(store_id, order_id)


def waiting_for_gateway(payment: Payment | None) -> dict[str, Any] | None:
    """For a payment waiting out an outage: since when the gateway is down (the breaker's opening,
    or this payment's wait if that is earlier or unknown), when its window ends and what is left."""
    if payment is None or payment.waiting_since is None or payment.status in Payment.FINAL_STATUSES:
        return None
    opened = breaker.state().get("opened_at")
    since = payment.waiting_since
    if opened:
        since = min(since, datetime.fromtimestamp(opened, tz=UTC))
    ends = services.window_ends_at(payment)
    return {
        "down_since": since,
        "waiting_since": payment.waiting_since,
        "window_ends_at": ends,
        "window_left_seconds": max(0, round((ends - timezone.now()).total_seconds())),
    }


def waiting_payments(store: Store, limit: int = 100) -> QuerySet[Payment]:
    """The store's payments waiting for the gateway, first in the release queue first."""
    return (
        payments(store)
        .filter(waiting_since__isnull=False, status__in=[Payment.Status.PENDING, Payment.Status.PROCESSING])
        .order_by("waiting_since", "created_at")[:limit]
    )


# ------------------------------------------------------- reads for other apps


def state_machines() -> dict[str, type]:
    """The machines this app declares (their TRANSITIONS tables), by workflow step: what the
    dashboard's workflow page draws, without reaching into payments' models."""
    return {"payment": Payment}


def retrying_payments(store: Store) -> QuerySet[Payment]:
    """Payments between attempts right now (not the ones waiting out an outage), with their
    order, soonest next attempt first."""
    return (
        payments(store)
        .filter(status=Payment.Status.PROCESSING, next_retry_at__isnull=False, waiting_since__isnull=True)
        .select_related("order")
        .order_by("next_retry_at")
    )
