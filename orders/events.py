"""The typed events of the orders step (see orderflow.core.events.EventPayload): the payload of
each topic the orders app emits, and of the order's own moves (`order.<status>`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orderflow.core.events import EventPayload, StateChange, optional


@dataclass(frozen=True, kw_only=True)
class OrderCreated(EventPayload):
    """An order was placed: it is pending, its stock reserved."""

    topic: ClassVar[str] = "order.created"
    step: ClassVar[str] = "order"
    box: ClassVar[str | None] = "order.pending"

    number: int | None = None
    total: str | None = None  # decimal as a string
    currency: str | None = None
    item_count: int | None = None
    units: int | None = None
    email_domain: str | None = None
    country: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderMoved(StateChange):
    """`order.<status>`: the data of the order's moves (Order.EVENT_PAYLOAD). Each move carries
    from/to/reason and the few fields that say what happened; the rest are left out."""

    machine: ClassVar[str | None] = "order"

    score: int | None = optional()  # the fraud check: approved or held
    rules: list[dict[str, Any]] | None = optional()  # held for review: the rules that hit
    requested_by: str | None = optional()  # sent back to payment (payments.retry)
    new_card: bool | None = optional()
    charge_id: str | None = optional()  # paid
    amount: str | None = optional()
    error_code: str | None = optional()  # payment failed
    decline_code: str | None = optional()
    carrier: str | None = optional()  # shipped, delivered
    tracking_number: str | None = optional()
    number: int | None = optional()  # cancelled, expired
    previous_status: str | None = optional()
    payment_status: str | None = optional()
    total: str | None = optional()
    currency: str | None = optional()
    units_released: int | None = optional()
    units_returned: int | None = optional()


@dataclass(frozen=True, kw_only=True)
class OrderReconciled(EventPayload):
    """The reconciler repaired an order some message or handler left stuck. Absent problem/action
    (a row written before they were required) read as "stuck" / "repaired"."""

    topic: ClassVar[str] = "order.reconciled"
    step: ClassVar[str] = "order"

    problem: str = "stuck"
    action: str = "repaired"
    task: str | None = optional()
    handler_ran: bool | None = optional()
    event_published: bool | None = optional()
    payment_id: str | None = optional()
    payment_status: str | None = optional()
    order_status: str | None = optional()
    status: str | None = optional()
    attempts: int | None = optional()
    units: int | None = optional()
    stuck_seconds: float | None = optional()
