"""The order page in words: a status stepper drawn from the order's transition table, and one
sentence per event ("Payment of €42.00 succeeded (visa •••• 4242)"), the event's JSON kept for a
fold-out. Every registered topic reads as something; an unknown one falls back to its name."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from orderflow.core.statemachine import graph
from orders import selectors as order_selectors

from .templatetags.dashboard_tags import duration

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}

# The stepper's short names for the states an order passes through.
STEP_LABELS = {
    "pending": "pending",
    "payment_processing": "paying",
    "ready_to_ship": "ready",
}


def money(amount: Any, currency: str) -> str:
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}".strip()
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


# ------------------------------------------------------------------------------- stepper


def happy_path(table: dict | None = None, start: str = "pending", goal: str = "delivered") -> list[str]:
    """The states every order that reaches `goal` passes through, in order: the states that cannot
    be skipped on the way (fraud review can: pending goes straight to payment), derived from the
    transition table, so a new mandatory state shows up here by itself."""
    table = table or graph(order_selectors.state_machines()["order"])
    table = {str(k): {str(v) for v in vs} for k, vs in table.items()}

    def reaches(without: str) -> bool:
        seen, todo = {start}, [start]
        while todo:
            s = todo.pop()
            if s == goal:
                return True
            for n in table.get(s, ()):
                if n != without and n not in seen:
                    seen.add(n)
                    todo.append(n)
        return False

    needed = [s for s in table if s in (start, goal) or not reaches(s)]
    # in the order a walk meets them: by distance from the start
    depth, todo = {start: 0}, [start]
    while todo:
        s = todo.pop(0)
        for n in sorted(table.get(s, ())):
            if n not in depth:
                depth[n] = depth[s] + 1
                todo.append(n)
    return sorted(needed, key=lambda s: depth.get(s, 0))


def stepper(order: Any, topics: list[str]) -> dict[str, Any]:
    """The steps with `done` / `current` / `todo`; an order off the path (held for review, or
    stopped: cancelled, rejected, expired, payment failed) shows where it got to and why."""
    path = happy_path()
    reached = {"pending"} | {t.split(".", 1)[1] for t in topics if t.startswith("order.")}
    if order.status in path:
        current = path.index(order.status)
    else:
        current = max((i for i, s in enumerate(path) if s in reached), default=0)
    steps = [
        {
            "state": s,
            "label": STEP_LABELS.get(s, s.replace("_", " ")),
            "at": "done" if i < current else "current" if i == current else "todo",
        }
        for i, s in enumerate(path)
    ]
    off = None if order.status in path else order.status.replace("_", " ")
    stopped = order.status in order_selectors.final_statuses() and order.status not in path
    if stopped:
        steps[current]["at"] = "stopped"
    return {"steps": steps, "off_path": off, "stopped": stopped}


# ------------------------------------------------------------------------------ sentences


def _card(order: Any) -> str:
    if order.card_last4:
        return f" ({order.card_brand or 'card'} •••• {order.card_last4})"
    return ""


def _because(d: dict) -> str:
    reason = d.get("reason") or d.get("message") or ""
    return f": {reason}" if reason else ""


def _order_state(state: str, text: str) -> Callable[[dict, Any], str]:
    return lambda d, o: text + (_because(d) if state in ("cancelled", "rejected", "expired") else "")


SENTENCES: dict[str, Callable[[dict, Any], str]] = {
    "order.created": lambda d, o: (
        f"Order #{d.get('number', o.number)} placed: {d.get('units', d.get('item_count', '?'))} item(s) "
        f"for {money(d.get('total', o.total), d.get('currency', o.currency))}"
    ),
    "order.pending": lambda d, o: "Sent back to payment" + _because(d),
    "order.fraud_review": lambda d, o: "Held for fraud review" + _because(d),
    "order.payment_processing": lambda d, o: "Sent to payment",
    "order.paid": lambda d, o: "Order paid",
    "order.fulfilling": lambda d, o: "Fulfillment started",
    "order.ready_to_ship": lambda d, o: "Ready to ship",
    "order.shipped": lambda d, o: (
        f"Shipped with {str(d.get('carrier', '')).upper()} {d.get('tracking_number', '')}".strip()
    ),
    "order.delivered": lambda d, o: "Delivered to the shopper",
    "order.payment_failed": lambda d, o: "Order closed: the payment failed",
    "order.cancelled": _order_state("cancelled", "Order cancelled"),
    "order.rejected": _order_state("rejected", "Order rejected"),
    "order.expired": _order_state("expired", "Order expired unpaid"),
    "order.reconciled": lambda d, o: f"Reconciled: {d.get('problem', 'checked')}".replace("_", " "),
    "fraud.checked": lambda d, o: f"Fraud check: {d.get('decision', '?')} (score {d.get('score', '?')})",
    "fraud.reviewed": lambda d, o: f"Fraud review: {d.get('decision', '?')}" + _because(d),
    "payment.processing": lambda d, o: (
        f"Payment attempt {d.get('attempt', 1)} of {d.get('max_attempts', '?')} started"
    ),
    "payment.retrying": lambda d, o: (
        f"Payment attempt {d.get('attempt', '?')} did not go through ({d.get('error', 'error')}); "
        f"retrying in {duration(d.get('next_delay_seconds'))}"
    ),
    "payment.processed": lambda d, o: (
        f"Payment of {money(d.get('amount', o.total), d.get('currency', o.currency))} succeeded{_card(o)}"
    ),
    "payment.failed": lambda d, o: (
        f"Payment of {money(o.total, o.currency)} failed{_card(o)}"
        + (
            f": {d.get('decline_code') or d.get('error_code')}"
            if d.get("decline_code") or d.get("error_code")
            else ""
        )
    ),
    "payment.cancelled": lambda d, o: "Payment cancelled: the order closed before it was charged",
    "payment.refunded": lambda d, o: (
        f"Refund of {money(d.get('amount', o.total), d.get('currency', o.currency))} issued{_card(o)}"
    ),
    "payment.refund_failed": lambda d, o: "Refund did not go through" + _because(d) + "; it will be retried",
    "payment.waiting": lambda d, o: (
        "The gateway is down: the payment waits, spending no attempt, until it is back"
    ),
    "payment.resumed": lambda d, o: "The gateway is back: the payment goes ahead",
    "payment.retry_requested": lambda d, o: (
        f"Payment tried again (asked by {d.get('requested_by', 'someone')}"
        + (", with a new card" if d.get("new_card") else "")
        + ")"
    ),
    "payment.refund_requested": lambda d, o: (
        f"Refund of {money(d.get('amount', o.total), d.get('currency', o.currency))} asked for" + _because(d)
    ),
    "payment.partially_refunded": lambda d, o: (
        f"Partial refund of {money(d.get('amount', o.total), d.get('currency', o.currency))} issued{_card(o)}"
    ),
    "inventory.updated": lambda d, o: "Stock levels updated",
    "inventory.threshold_reached": lambda d, o: "A SKU of this order reached its low-stock threshold",
    "fulfillment.created": lambda d, o: f"Fulfillment opened: {len(d.get('lines', []))} line(s) to pick",
    "fulfillment.picking": lambda d, o: "Picking started",
    "fulfillment.picked": lambda d, o: "Everything picked",
    "fulfillment.packed": lambda d, o: (
        f"Packed: {d.get('packages', '?')} package(s), {d.get('weight_grams', '?')} g"
    ),
    "fulfillment.ready_to_ship": lambda d, o: "Packed and ready for the carrier",
    "fulfillment.shipped": lambda d, o: f"Handed to {str(d.get('carrier', 'the carrier')).upper()}",
    "fulfillment.cancelled": lambda d, o: "Fulfillment cancelled" + _because(d),
    "shipment.label_created": lambda d, o: (
        f"Shipping label created: {str(d.get('carrier', '')).upper()} {d.get('tracking_number', '')}".strip()
    ),
    "shipment.in_transit": lambda d, o: "Parcel in transit",
    "shipment.out_for_delivery": lambda d, o: "Out for delivery",
    "shipment.exception": lambda d, o: "The carrier reported a problem" + _because(d),
    "shipment.delivered": lambda d, o: "Parcel delivered",
    "shipment.returned": lambda d, o: "Parcel returned to sender",
    "alert.opened": lambda d, o: f"Alert opened ({d.get('severity', '?')}): {d.get('message', '')}",
    "alert.updated": lambda d, o: f"Alert seen again ×{d.get('count', '?')}: {d.get('message', '')}",
    "alert.acknowledged": lambda d, o: "Alert acknowledged",
    "alert.resolved": lambda d, o: "Alert resolved",
}


def sentence(topic: str, data: dict | None, order: Any) -> str:
    say = SENTENCES.get(topic)
    if say is None:
        return topic.replace(".", ": ", 1).replace("_", " ").capitalize()
    try:
        return say(data or {}, order)
    except Exception:  # a sentence never breaks the page: old events may lack a field
        return topic
