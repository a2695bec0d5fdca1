"""The one transition helper every state machine uses.

Each stateful model declares `TRANSITIONS = {from: {to, ...}}` and `EVENT_PREFIX`; every change
goes through `transition()`, which refuses moves outside the table (409 `invalid_transition`),
saves with a conditional UPDATE (so a concurrent change is detected, not overwritten) and emits
`<prefix>.<new state>` in the same transaction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from .errors import InvalidTransition
from .events import StateChange, write_event
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
    event: StateChange | None = None,
    data: dict[str, Any] | None = None,
    updates: dict[str, Any] | None = None,
    emit_event: bool = True,
) -> models.Model:
    """Move `obj.<field>` to `to` if its table allows it; refuse otherwise.

    `updates` are other columns written in the same UPDATE (timestamps, who did it). The event is
    `<prefix>.<to>` with {"from", "to", "reason", **data} — `data` holds only fields the model's
    `EVENT_PAYLOAD` declares — or, for a move that names its own topic (a state in the model's
    `NAMED_ENTRIES`), the typed `event` whose box is that state, from/to/reason filled in."""
    table = table if table is not None else type(obj).TRANSITIONS
    current = getattr(obj, field)
    if to not in table.get(current, set()):
        raise InvalidTransition(
            f"{type(obj).__name__} cannot go from '{current}' to '{to}'.",
            extra={"from": current, "to": to},
        )
    if emit_event:
        topic, payload = _event_of(type(obj), current, to, reason, event, data)
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
            order_id = obj.pk if getattr(type(obj), "IS_ORDER", False) else getattr(obj, "order_id", None)
            write_event(
                topic, store=_store_of(obj), order_id=order_id, subject=obj, data=payload, actor=actor
            )
    if changed != 1:
        raise InvalidTransition(
            f"{type(obj).__name__} changed concurrently (now '{fresh}'); '{to}' was not applied.",
            extra={"from": fresh, "to": to},
        )
    return obj


def _event_of(
    model: type[models.Model],
    current: str,
    to: str,
    reason: str,
    event: StateChange | None,
    data: dict | None,
) -> tuple[str, dict[str, Any]]:
    """The topic and data a move emits; a mismatch with the registry is a programming error."""
    prefix = model.EVENT_PREFIX
    if event is not None:
        if data or event.box != f"{prefix}.{to}":
            raise ValueError(
                f"{type(event).__name__} (box {event.box}) cannot describe a move to {prefix}.{to}"
            )
        return event.topic, dataclasses.replace(event, from_state=current, to=to, reason=reason).as_data()
    if to in getattr(model, "NAMED_ENTRIES", ()):
        raise ValueError(
            f"{model.__name__} enters '{to}' only with a named event (transition(..., event=...))"
        )
    unknown = set(data or ()) - model.EVENT_PAYLOAD.data_keys()
    if unknown:
        raise ValueError(f"{model.EVENT_PAYLOAD.__name__} declares no {sorted(unknown)}")
    return f"{prefix}.{to}", {"from": current, "to": to, "reason": reason, **(data or {})}


def sources_of(table: dict, to: str) -> frozenset:
    """The states a table lets move to `to` (the cancellable statuses are `sources_of(T, "cancelled")`):
    a status set derived from the table, never restated by hand."""
    return frozenset(src for src, dsts in table.items() if to in dsts)


def graph(model: type[models.Model], table: dict | None = None) -> dict[str, list[str]]:
    """The table as plain lists, for docs and the dashboard's workflow view."""
    table = table if table is not None else model.TRANSITIONS
    return {str(src): sorted(str(d) for d in dsts) for src, dsts in table.items()}
