"""Writes on orders. Downstream steps (payments, fulfillment) move an order only through these."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from orderflow.core.statemachine import transition

from .models import Order


def change_status(
    *,
    order: Order,
    to: str,
    reason: str = "",
    actor: str = "system",
    data: dict[str, Any] | None = None,
    updates: dict[str, Any] | None = None,
) -> Order:
    """Move the order along its TRANSITIONS table (409 `invalid_transition` otherwise) and emit
    `order.<to>` in the same transaction. `updates` are other columns written with it."""
    return transition(order, to, reason=reason, actor=actor, data=data, updates=updates)


def set_payment_status(*, order: Order, status: str, attempts: int | None = None) -> Order:
    """Mirror the payment's state on the order (the payment's own events tell the story)."""
    values: dict[str, Any] = {"payment_status": status, "updated_at": timezone.now()}
    if attempts is not None:
        values["payment_attempts"] = attempts
    Order.all_stores.filter(pk=order.pk).update(**values)
    for name, value in values.items():
        setattr(order, name, value)
    return order


def set_fulfillment_status(*, order: Order, status: str) -> Order:
    """Mirror the fulfillment's / shipment's state on the order."""
    now = timezone.now()
    Order.all_stores.filter(pk=order.pk).update(fulfillment_status=status, updated_at=now)
    order.fulfillment_status, order.updated_at = status, now
    return order


def record_risk(*, order: Order, score: int, decision: str, rules: list[dict[str, Any]]) -> Order:
    """Keep the fraud check's outcome on the order (score 0–100, approve/review/reject, rule hits)."""
    now = timezone.now()
    Order.all_stores.filter(pk=order.pk).update(
        risk_score=score, risk_decision=decision, risk_rules=rules, updated_at=now
    )
    order.risk_score, order.risk_decision, order.risk_rules, order.updated_at = score, decision, rules, now
    return order
