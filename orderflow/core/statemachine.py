"""The one transition helper every state machine uses.

Each stateful model declares `TRANSITIONS = {from: {to, ...}}` and `EVENT_PREFIX`; every change
goes through `transition()`, which refuses moves outside the table (409 `invalid_transition`),
saves with a conditional UPDATE (so a concurrent change is detected, not overwritten) and emits
`<prefix>.<new state>` in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.utils import timezone

from .errors import InvalidTransition
from .events import emit
from .tenancy import current_store


def _store_of(obj: models.Model):
    """The object's store without a query when it is at hand: the cached relation, or the store the
    request or task is working in (the same row). A fresh `select_for_update()` copy has neither
    cached, and an autopilot step fetched the store that way twice."""
    if type(obj).store.is_cached(obj):
        return obj.store
    store = current_store()
    if store is not None and store.pk == obj.store_id:
        return store
    return obj.store


def allowed(obj: models.Model, to: str, *, field: str = "status", table: dict | None = None) -> bool:
    table = table if table is not None else type(obj).TRANSITIONS
    return to in table.get(getattr(obj, field), set())


def transition(
    obj: models.Model,
    to: str,
    *,
    reason: str = "",
    actor: str = "",
    field: str = "status",
    table: dict | None = None,
    topic: str | None = None,
    data: dict[str, Any] | None = None,
    updates: dict[str, Any] | None = None,
    emit_event: bool = True,
) -> models.Model:
    """Move `obj.<field>` to `to` if its table allows it; refuse otherwise.

    `updates` are other columns written in the same UPDATE (timestamps, who did it)."""
    table = table if table is not None else type(obj).TRANSITIONS
    current = getattr(obj, field)
    if to not in table.get(current, set()):
        raise InvalidTransition(
            f"{type(obj).__name__} cannot go from '{current}' to '{to}'.",
            extra={"from": current, "to": to},
        )
    values: dict[str, Any] = {field: to, **(updates or {})}
    if any(f.name == "updated_at" for f in obj._meta.fields):
        values.setdefault("updated_at", timezone.now())
    manager = obj._meta.base_manager
    # No savepoint: nearly every caller is already inside its own transaction, and a savepoint is
    # two more round trips per transition. The refusal is raised *after* the block, so a caller
    # that catches InvalidTransition keeps a usable transaction (nothing was written: the
    # conditional UPDATE matched no row).
    with transaction.atomic(savepoint=False):
        changed = manager.filter(pk=obj.pk, **{field: current}).update(**values)
        if changed == 1:
            for name, value in values.items():
                setattr(obj, name, value)
        else:
            fresh = manager.filter(pk=obj.pk).values_list(field, flat=True).first()
        if changed == 1 and emit_event:
            prefix = getattr(type(obj), "EVENT_PREFIX", obj._meta.model_name)
            order_id = obj.pk if getattr(type(obj), "IS_ORDER", False) else getattr(obj, "order_id", None)
            emit(
                topic or f"{prefix}.{to}",
                store=_store_of(obj),
                order_id=order_id,
                subject=obj,
                data={"from": current, "to": to, "reason": reason, **(data or {})},
                actor=actor,
            )
    if changed != 1:
        raise InvalidTransition(
            f"{type(obj).__name__} changed concurrently (now '{fresh}'); '{to}' was not applied.",
            extra={"from": fresh, "to": to},
        )
    return obj


def sources_of(table: dict, to: str) -> frozenset:
    """The states a table lets move to `to` (the cancellable statuses are `sources_of(T, "cancelled")`):
    a status set derived from the table, never restated by hand."""
    return frozenset(src for src, dsts in table.items() if to in dsts)


def graph(model: type[models.Model], table: dict | None = None) -> dict[str, list[str]]:
    """The table as plain lists, for docs and the dashboard's workflow view."""
    table = table if table is not None else model.TRANSITIONS
    return {str(src): sorted(str(d) for d in dsts) for src, dsts in table.items()}
