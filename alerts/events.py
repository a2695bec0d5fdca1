"""The typed events of alerts (see orderflow.core.events.EventPayload). Every `alert.*` event
carries the alert in brief (Alert.as_event_data()), enough for a push or a webhook to render it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from orderflow.core.events import EventPayload, StateChange


@dataclass(frozen=True, kw_only=True)
class _AlertData(EventPayload):
    id: int | None = None
    kind: str | None = None
    severity: str | None = None
    subject: str | None = None
    message: str | None = None
    count: int | None = None
    status: str | None = None


@dataclass(frozen=True, kw_only=True)
class AlertMoved(StateChange, _AlertData):
    """`alert.<status>` (Alert.EVENT_PAYLOAD): acknowledged, resolved."""

    machine: ClassVar[str | None] = "alert"


@dataclass(frozen=True, kw_only=True)
class AlertOpened(_AlertData):
    topic: ClassVar[str] = "alert.opened"
    step: ClassVar[str] = "alert"
    box: ClassVar[str | None] = "alert.open"


@dataclass(frozen=True, kw_only=True)
class AlertUpdated(_AlertData):
    """An open alert was seen again (count bumped) or its severity rose."""

    topic: ClassVar[str] = "alert.updated"
    step: ClassVar[str] = "alert"
    box: ClassVar[str | None] = "alert.open"
