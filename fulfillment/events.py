"""The typed events of fulfillment and the carrier (see orderflow.core.events.EventPayload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orderflow.core.events import EventPayload, StateChange, optional


@dataclass(frozen=True, kw_only=True)
class FulfillmentMoved(StateChange):
    """`fulfillment.<status>` (Fulfillment.EVENT_PAYLOAD)."""

    machine: ClassVar[str | None] = "fulfillment"

    lines: list[dict[str, Any]] | None = optional()  # picking: sku, quantity
    packages: int | None = optional()  # packed
    weight_grams: int | None = optional()
    carrier: str | None = optional()  # shipped


@dataclass(frozen=True, kw_only=True)
class _Tracking(EventPayload):
    """What every `shipment.*` event carries (Shipment.tracking_data())."""

    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None
    estimated_delivery: str | None = None  # ISO 8601
    occurred_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class ShipmentMoved(StateChange, _Tracking):
    """`shipment.<status>` (Shipment.EVENT_PAYLOAD): the tracking fields and who told us."""

    machine: ClassVar[str | None] = "shipment"

    source: str | None = optional()  # "carrier" | "operator" | "simulator"


@dataclass(frozen=True, kw_only=True)
class FulfillmentCreated(EventPayload):
    """A paid order's pick list was opened (the fulfillment is pending)."""

    topic: ClassVar[str] = "fulfillment.created"
    step: ClassVar[str] = "fulfillment"
    box: ClassVar[str | None] = "fulfillment.pending"

    lines: list[dict[str, Any]] | None = None  # sku, quantity


@dataclass(frozen=True, kw_only=True)
class FulfillmentPicked(EventPayload):
    """Lines were picked (the fulfillment stays in picking)."""

    topic: ClassVar[str] = "fulfillment.picked"
    step: ClassVar[str] = "fulfillment"
    box: ClassVar[str | None] = "fulfillment.picking"

    lines: list[dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class ShipmentLabelCreated(_Tracking):
    """A label was bought: the shipment exists, in `label_created`."""

    topic: ClassVar[str] = "shipment.label_created"
    step: ClassVar[str] = "shipment"
    box: ClassVar[str | None] = "shipment.label_created"

    to: str | None = None
