"""Every topic the flow can emit, in one list: what the workflow page draws from the start (before a
topic has ever happened) and what the order timeline puts into words.

`box` names the state box a topic lands in, as `<machine prefix>.<state>`: a move into a state
emits `<prefix>.<state>` unless the move names its own topic (`payment.processed` enters
`payment.succeeded`), and creating a thing emits `<prefix>.created` for its initial state. A topic
with no box is an event of its step that moves no state (`inventory.updated`, `fraud.checked`).

`tests/core/test_topics.py` keeps this list and the code that emits in step: every topic an
`emit(...)` or `transition(..., topic=...)` names, and every default `<prefix>.<state>` of the
state tables, is here, and nothing here is emitted by no one.
"""

from __future__ import annotations

from dataclasses import dataclass

# The steps, left to right as an order moves through them (the workflow page's columns).
STEPS = ("order", "stock", "payment", "fulfillment", "shipment", "alert", "store")


@dataclass(frozen=True)
class Topic:
    name: str
    step: str
    box: str | None = None  # "<prefix>.<state>" this topic enters, when it moves a state


def _states(prefix: str, *states: str, step: str | None = None) -> list[Topic]:
    return [Topic(f"{prefix}.{s}", step or prefix, f"{prefix}.{s}") for s in states]


TOPICS: dict[str, Topic] = {
    t.name: t
    for t in [
        # orders
        Topic("order.created", "order", "order.pending"),
        *_states(
            "order",
            "fraud_review",
            "payment_processing",
            "paid",
            "fulfilling",
            "ready_to_ship",
            "shipped",
            "delivered",
            "payment_failed",
            "cancelled",
            "rejected",
            "expired",
        ),
        Topic("order.reconciled", "order"),
        # stock (reserved for an order when it is placed, released or committed later)
        Topic("inventory.updated", "stock"),
        Topic("inventory.threshold_reached", "stock"),
        Topic("inventory.threshold_cleared", "stock"),
        Topic("inventory.forecast_low", "stock"),
        Topic("inventory.forecast_cleared", "stock"),
        Topic("product.created", "stock"),
        Topic("product.updated", "stock"),
        # payments (fraud screening first, the gateway's health alongside)
        Topic("fraud.checked", "payment"),
        Topic("fraud.reviewed", "payment"),
        *_states("payment", "processing"),
        Topic("payment.retrying", "payment", "payment.processing"),
        Topic("payment.processed", "payment", "payment.succeeded"),
        Topic("payment.failed", "payment", "payment.failed"),
        Topic("payment.cancelled", "payment", "payment.failed"),
        Topic("payment.waiting", "payment"),  # behind the open breaker, inside the payment window
        Topic("payment.resumed", "payment"),
        Topic("payment.retry_requested", "payment", "payment.pending"),
        Topic("payment.refund_requested", "payment"),
        *_states("payment", "partially_refunded"),
        Topic("payment.refunded", "payment", "payment.refunded"),
        Topic("payment.refund_failed", "payment", "payment.succeeded"),
        Topic("gateway.down", "payment"),
        Topic("gateway.up", "payment"),
        # fulfillment and the carrier
        Topic("fulfillment.created", "fulfillment", "fulfillment.pending"),
        *_states("fulfillment", "picking", "packed", "ready_to_ship", "shipped", "cancelled"),
        Topic("fulfillment.picked", "fulfillment", "fulfillment.picking"),
        Topic("shipment.label_created", "shipment", "shipment.label_created"),
        *_states("shipment", "in_transit", "out_for_delivery", "exception", "delivered", "returned"),
        # alerts
        Topic("alert.opened", "alert", "alert.open"),
        Topic("alert.updated", "alert", "alert.open"),
        *_states("alert", "acknowledged", "resolved"),
        # the store's own settings and keys
        Topic("store.settings_changed", "store"),
        Topic("api_key.created", "store"),
        Topic("api_key.revoked", "store"),
    ]
}


def topics_of_box(box: str) -> list[str]:
    """The topics that land in a state box (`payment.succeeded` → `payment.processed`, ...)."""
    return [t.name for t in TOPICS.values() if t.box == box]
