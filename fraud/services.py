"""Writes of the fraud check: screen a new order, and an operator's review of a held one.

Each is one transaction under the order's lock: the score is kept on the order, `fraud.checked`
(or `fraud.reviewed`) is emitted, and the order moves through its named actions — approved to
`payment_processing` (payments charges it), held in `fraud_review`, or `rejected` with its stock
released. A second run finds the order no longer pending (or in review) and does nothing.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import transaction

from orderflow.core.errors import InvalidTransition
from orderflow.core.events import emit
from orderflow.core.tenancy import Store
from orders import services as order_services
from orders.locks import lock_order, lock_order_or_404
from orders.states import OrderStatus

from . import rules
from .events import FraudChecked, FraudReviewed

if TYPE_CHECKING:  # annotations only: orders are read and moved through orders' services
    from orders.models import Order

ACTOR = "fraud"
OS = OrderStatus


def screen(*, store: Store, order_id: uuid.UUID | str) -> Order | None:
    """Score a pending order and act on the decision (None: no such order). Inside a caller's
    transaction it adds no savepoint (payments opens the approved order's payment with it)."""
    with transaction.atomic(savepoint=False):
        order = lock_order(store, order_id)
        if order is None or order.status != OS.PENDING:
            return order
        assessment = rules.assess(order)
        risk = order_services.Risk(assessment.score, assessment.decision, assessment.rules)
        emit(
            FraudChecked(score=assessment.score, decision=assessment.decision, rules=assessment.rules),
            store=store,
            order_id=order.pk,
            subject=order,
            actor=ACTOR,
        )
        reason = f"fraud score {assessment.score}"
        if assessment.decision == rules.APPROVE:
            order_services.approve_for_payment(
                order=order, actor=ACTOR, reason=reason, data={"score": assessment.score}, risk=risk
            )
        elif assessment.decision == rules.REVIEW:
            order_services.hold_for_review(
                order=order,
                actor=ACTOR,
                reason=reason,
                data={"score": assessment.score, "rules": assessment.rules},
                risk=risk,
            )
        else:
            order_services.reject(order=order, actor=ACTOR, reason=reason, risk=risk)
    return order


def approve(*, store: Store, order_id: uuid.UUID | str, actor: str) -> Order:
    """An operator clears an order held for review: it goes on to payment (`fraud.reviewed`
    {decision: approve} is what payments charges on)."""
    with transaction.atomic():
        order = _order_in_review(store, order_id)
        order_services.approve_for_payment(order=order, actor=actor, reason="approved after fraud review")
        emit(
            FraudReviewed(decision=rules.APPROVE, score=order.risk_score),
            store=store,
            order_id=order.pk,
            subject=order,
            actor=actor,
        )
    return order


def reject(*, store: Store, order_id: uuid.UUID | str, actor: str, reason: str = "") -> Order:
    """An operator rejects an order held for review: it is closed and its stock comes back."""
    with transaction.atomic():
        order = _order_in_review(store, order_id)
        emit(
            FraudReviewed(decision=rules.REJECT, score=order.risk_score, reason=reason),
            store=store,
            order_id=order.pk,
            subject=order,
            actor=actor,
        )
        order_services.reject(order=order, actor=actor, reason=reason or "rejected after fraud review")
    return order


def _order_in_review(store: Store, order_id: uuid.UUID | str) -> Order:
    order = lock_order_or_404(store, order_id)
    if order.status != OS.FRAUD_REVIEW:
        raise InvalidTransition(
            f"Only an order in fraud_review can be approved or rejected; this one is '{order.status}'.",
            extra={"from": order.status},
        )
    return order
