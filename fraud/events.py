"""The typed events of the fraud check (see orderflow.core.events.EventPayload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orderflow.core.events import EventPayload, optional


@dataclass(frozen=True, kw_only=True)
class FraudChecked(EventPayload):
    """A pending order was scored: approve, review or reject, and the rules that hit."""

    topic: ClassVar[str] = "fraud.checked"
    step: ClassVar[str] = "payment"

    score: int | None = None
    decision: str | None = None
    rules: list[dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class FraudReviewed(EventPayload):
    """An operator approved or rejected an order held for review (a rejection says why)."""

    topic: ClassVar[str] = "fraud.reviewed"
    step: ClassVar[str] = "payment"

    decision: str | None = None
    score: int | None = None
    reason: str | None = optional()
