"""The typed events of the payments step (see orderflow.core.events.EventPayload): the payment's
own moves (`payment.<status>`), the moves that name their own topic (`payment.processed` enters
`succeeded`), and the events of a charge, a refund and the gateway's health."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orderflow.core.events import EventPayload, StateChange, optional


@dataclass(frozen=True, kw_only=True)
class PaymentMoved(StateChange):
    """`payment.<status>` (Payment.EVENT_PAYLOAD): the first attempt, a refund booked."""

    machine: ClassVar[str | None] = "payment"

    attempt: int | None = optional()  # processing
    max_attempts: int | None = optional()
    refund: str | None = optional()  # partially_refunded, refunded
    refund_id: str | None = optional()
    amount: str | None = optional()
    currency: str | None = optional()
    refunded_total: str | None = optional()
    remaining: str | None = optional()
    charge_id: str | None = optional()
    lines: list[dict[str, Any]] | None = optional()
    restocked: bool | None = optional()


@dataclass(frozen=True, kw_only=True)
class PaymentProcessed(StateChange):
    """The charge succeeded (enters `succeeded`). `attempts` None: not known (an older row)."""

    topic: ClassVar[str] = "payment.processed"
    step: ClassVar[str] = "payment"
    box: ClassVar[str | None] = "payment.succeeded"

    amount: str | None = None
    currency: str | None = None
    charge_id: str | None = None
    attempts: int | None = None
    # the order was cancelled or expired when the charge was recorded (its refund follows:
    # receivers.refund_if_order_gone); None: not known (a row from before the field)
    order_gone: bool | None = optional()


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(StateChange):
    """The charge failed for good (enters `failed`): declined, or out of attempts or time."""

    topic: ClassVar[str] = "payment.failed"
    step: ClassVar[str] = "payment"
    box: ClassVar[str | None] = "payment.failed"

    error_code: str | None = None
    decline_code: str | None = None
    error: str | None = None  # the same as error_code (kept: webhooks read it)
    message: str | None = None
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentCancelled(StateChange):
    """The charge was called off because the order closed first (enters `failed`)."""

    topic: ClassVar[str] = "payment.cancelled"
    step: ClassVar[str] = "payment"
    box: ClassVar[str | None] = "payment.failed"

    error_code: str | None = None
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentRetryRequested(StateChange):
    """A payment_failed order is sent to be paid again (enters `pending`). Emitted on the order,
    without from/to, when it failed before a Payment existed."""

    topic: ClassVar[str] = "payment.retry_requested"
    step: ClassVar[str] = "payment"
    box: ClassVar[str | None] = "payment.pending"

    requested_by: str | None = None
    new_card: bool | None = None
    card_last4: str | None = None
    units_reserved: int | None = None
    previous_error_code: str | None = None
    previous_decline_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentRetrying(EventPayload):
    """A gateway call failed and will be tried again after `next_delay_seconds`."""

    topic: ClassVar[str] = "payment.retrying"
    step: ClassVar[str] = "payment"
    box: ClassVar[str | None] = "payment.processing"

    attempt: int | None = None
    max_attempts: int | None = None
    next_delay_seconds: float | None = None
    error: str | None = None
    message: str | None = None
    outcome_unknown: bool = False


@dataclass(frozen=True, kw_only=True)
class PaymentWaiting(EventPayload):
    """The charge waits behind the open breaker, inside the payment window."""

    topic: ClassVar[str] = "payment.waiting"
    step: ClassVar[str] = "payment"

    reason: str | None = None
    since: str | None = None  # ISO 8601
    window_ends_at: str | None = None
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentResumed(EventPayload):
    """A waiting charge goes on: the gateway is back."""

    topic: ClassVar[str] = "payment.resumed"
    step: ClassVar[str] = "payment"

    since: str | None = None
    waited_seconds: float | None = None
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentRefundRequested(EventPayload):
    topic: ClassVar[str] = "payment.refund_requested"
    step: ClassVar[str] = "payment"

    refund: str | None = None
    amount: str | None = None
    currency: str | None = None
    lines: list[dict[str, Any]] | None = None  # sku, quantity
    restock: bool | None = None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentRefundFailed(EventPayload):
    """The gateway refused a refund for good; the payment stays as it was (box `succeeded`)."""

    topic: ClassVar[str] = "payment.refund_failed"
    step: ClassVar[str] = "payment"
    box: ClassVar[str | None] = "payment.succeeded"

    refund: str | None = None
    amount: str | None = None
    error_code: str | None = None
    message: str | None = None
    attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class GatewayDown(EventPayload):
    """The breaker opened: the gateway failed `failures` times in a row."""

    topic: ClassVar[str] = "gateway.down"
    step: ClassVar[str] = "payment"

    gateway: str | None = None
    error: str | None = None
    failures: int | None = None
    cooldown_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class GatewayUp(EventPayload):
    topic: ClassVar[str] = "gateway.up"
    step: ClassVar[str] = "payment"

    gateway: str | None = None
