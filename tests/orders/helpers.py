"""Helpers shared by the orders tests."""

from __future__ import annotations

import uuid

from inventory.models import StockLevel, StockMovement
from orderflow.core.events import Event
from orders.models import IdempotencyRecord, Order, OrderItem


def place(client, body, key: str | None = None, **headers):
    """POST /api/v1/orders with an Idempotency-Key (a fresh one unless given)."""
    return client.post(
        "/api/v1/orders",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=key if key is not None else f"k-{uuid.uuid4()}",
        **headers,
    )


def row_counts() -> dict[str, int]:
    """Every table a placed order writes to."""
    return {
        "orders": Order.all_stores.count(),
        "items": OrderItem.all_stores.count(),
        "idempotency": IdempotencyRecord.all_stores.count(),
        "movements": StockMovement.all_stores.count(),
        "events": Event.all_stores.count(),
    }


def stock(product) -> tuple[int, int]:
    """(on_hand, reserved) of a product, fresh from the database."""
    level = StockLevel.all_stores.get(product=product)
    return level.on_hand, level.reserved
