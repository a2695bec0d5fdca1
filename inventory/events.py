"""The typed events of the stock step (see orderflow.core.events.EventPayload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from orderflow.core.events import Event, EventPayload


@dataclass(frozen=True, kw_only=True)
class InventoryUpdated(EventPayload):
    """Stock levels changed (reserved, released, committed, restocked, adjusted): each level after."""

    topic: ClassVar[str] = "inventory.updated"
    step: ClassVar[str] = "stock"

    reason: str | None = None
    levels: list[dict[str, Any]] | None = None  # sku, on_hand, reserved, available, threshold, is_low


@dataclass(frozen=True, kw_only=True)
class ThresholdReached(EventPayload):
    """A product's available stock fell to its low-stock threshold (or to nothing). Absent `kind`:
    out of stock if `available` <= 0, else low stock."""

    topic: ClassVar[str] = "inventory.threshold_reached"
    step: ClassVar[str] = "stock"

    sku: str | None = None
    available: int | None = None
    on_hand: int | None = None
    reserved: int | None = None
    threshold: int | None = None
    kind: str | None = None  # "out_of_stock" | "low_stock"
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class ThresholdCleared(EventPayload):
    """A product's available stock is back above its threshold."""

    topic: ClassVar[str] = "inventory.threshold_cleared"
    step: ClassVar[str] = "stock"

    sku: str | None = None
    available: int | None = None
    threshold: int | None = None


@dataclass(frozen=True, kw_only=True)
class ForecastLow(EventPayload):
    """The sales forecast says the stock runs out within the product's lead time."""

    topic: ClassVar[str] = "inventory.forecast_low"
    step: ClassVar[str] = "stock"

    sku: str | None = None
    days_of_cover: float | None = None
    lead_time_days: int | None = None
    available: int | None = None
    kind: str = "low_stock"
    forecast: bool = True


@dataclass(frozen=True, kw_only=True)
class ForecastCleared(EventPayload):
    """The forecast recovered (`days_of_cover` None: no sales to forecast from)."""

    topic: ClassVar[str] = "inventory.forecast_cleared"
    step: ClassVar[str] = "stock"

    sku: str | None = None
    days_of_cover: float | None = None
    lead_time_days: int | None = None


@dataclass(frozen=True, kw_only=True)
class ProductCreated(EventPayload):
    topic: ClassVar[str] = "product.created"
    step: ClassVar[str] = "stock"

    sku: str | None = None
    name: str | None = None
    price: str | None = None  # decimal as a string
    initial_stock: int | None = None


@dataclass(frozen=True, kw_only=True)
class ProductUpdated(EventPayload):
    """A product's fields changed. Its data is {"sku", <each changed field>: <new value>}: the keys
    present are what changed (name, description, price as a string, active, lead_time_days,
    low_stock_threshold), so `changes` is stored flat beside the sku."""

    topic: ClassVar[str] = "product.updated"
    step: ClassVar[str] = "stock"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "name",
        "description",
        "price",
        "active",
        "lead_time_days",
        "low_stock_threshold",
    )

    sku: str | None = None
    changes: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.changes or ()) - set(self.FIELDS)
        if unknown:
            raise ValueError(f"product.updated names no field {sorted(unknown)}")

    def as_data(self) -> dict[str, Any]:
        return {"sku": self.sku, **(self.changes or {})}

    @classmethod
    def of(cls, event: Event) -> Self:
        if not cls.accepts(event.topic):
            raise ValueError(f"{cls.__name__} does not describe {event.topic} events")
        data = event.data or {}
        return cls(sku=data.get("sku"), changes={k: v for k, v in data.items() if k in cls.FIELDS})
