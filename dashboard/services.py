"""Writes the dashboard owns: the per-store step switches (platform staff, the stores page).

Everything else an operator does from the pages goes through the owning app's services, the same
ones the API calls."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from orderflow.core.errors import ValidationFailed
from orderflow.core.events import emit
from orderflow.core.tenancy import Store

SWITCHES = ("fraud_check_enabled", "fulfillment_autopilot", "fraud_review_threshold")


def update_store_switches(
    *,
    store: Store,
    actor: str,
    fraud_check_enabled: bool | None = None,
    fulfillment_autopilot: bool | None = None,
    fraud_review_threshold: int | None = None,
) -> Store:
    """Change the store's step switches in `Store.settings` (the flow reads them per order) and
    record who did it as a `store.settings_changed` event. None leaves a switch as it is."""
    changes: dict[str, Any] = {}
    if fraud_check_enabled is not None:
        changes["fraud_check_enabled"] = bool(fraud_check_enabled)
    if fulfillment_autopilot is not None:
        changes["fulfillment_autopilot"] = bool(fulfillment_autopilot)
    if fraud_review_threshold is not None:
        if isinstance(fraud_review_threshold, bool) or not 0 <= int(fraud_review_threshold) <= 100:
            raise ValidationFailed(
                fields={"fraud_review_threshold": ["Must be a whole number from 0 to 100."]}
            )
        changes["fraud_review_threshold"] = int(fraud_review_threshold)
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        before = {k: locked.setting(k) for k in changes}
        changed = {k: v for k, v in changes.items() if before[k] != v}
        if changed:
            locked.settings = {**(locked.settings or {}), **changed}
            locked.save(update_fields=["settings"])
            emit(
                "store.settings_changed",
                store=locked,
                subject=locked,
                data={"changes": {k: {"from": before[k], "to": v} for k, v in changed.items()}},
                actor=actor,
            )
    store.settings = locked.settings
    return store
