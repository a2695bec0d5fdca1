"""The typed events of the store itself: its settings and its API keys (see EventPayload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from .events import EventPayload


@dataclass(frozen=True, kw_only=True)
class StoreSettingsChanged(EventPayload):
    topic: ClassVar[str] = "store.settings_changed"
    step: ClassVar[str] = "store"

    changes: dict[str, dict[str, Any]] | None = None  # setting: {"from": old, "to": new}


@dataclass(frozen=True, kw_only=True)
class ApiKeyCreated(EventPayload):
    topic: ClassVar[str] = "api_key.created"
    step: ClassVar[str] = "store"

    prefix: str | None = None
    name: str | None = None
    scope: str | None = None


@dataclass(frozen=True, kw_only=True)
class ApiKeyRevoked(EventPayload):
    topic: ClassVar[str] = "api_key.revoked"
    step: ClassVar[str] = "store"

    prefix: str | None = None
    name: str | None = None
    scope: str | None = None
