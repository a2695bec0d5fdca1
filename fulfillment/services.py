"""Writes of the fulfillment step: start, pick, pack, mark ready, ship, cancel, and the autopilot.

Every step locks the order row, then the fulfillment row (always in that order, so two steps never
wait on each other crosswise), moves the fulfillment through `transition()` (which emits
`fulfillment.<state>`) and keeps the order in step through the orders services:
order `paid → fulfilling` when the fulfillment starts, `→ ready_to_ship` when it is ready,
`→ shipped` when it ships; `fulfillment_status` mirrors picking / packed / ready_to_ship / shipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orderflow.core.errors import InvalidTransition, NotFound, ValidationFailed
from orderflow.core.events import atomic_with_events, emit
from orderflow.core.statemachine import transition
from orderflow.core.tenancy import Store
from orders import services as order_services
from orders.locks import lock_order_or_404
from orders.states import FulfillmentStatus, OrderStatus

from . import delivery
from .events import FulfillmentCreated, FulfillmentPicked
from .models import Fulfillment, FulfillmentLine, Shipment

# A parcel's weight when nobody weighs it (autopilot, admin action): per unit picked.
DEFAULT_UNIT_WEIGHT_GRAMS = 250
AUTOPILOT_ACTOR = "autopilot"

FS = Fulfillment.Status

if TYPE_CHECKING:  # annotations only: orders are read and moved through orders' services
    from orders.models import Order


def _lock(store: Store, fulfillment: Fulfillment) -> tuple[Order, Fulfillment]:
    """Lock the order, then the fulfillment, and return fresh copies of both."""
    order = lock_order_or_404(store, fulfillment.order_id)
    fresh = Fulfillment.all_stores.select_for_update().filter(store=store, pk=fulfillment.pk).first()
    if fresh is None:
        raise NotFound("No such fulfillment.")
    if order.status == OrderStatus.CANCELLED and fresh.status != FS.CANCELLED:
        raise InvalidTransition(
            "The order is cancelled; its fulfillment is being cancelled.",
            extra={"from": fresh.status, "to": None},
        )
    return order, fresh


def _refresh_into(target: Fulfillment, source: Fulfillment) -> Fulfillment:
    """Copy the fresh row's values into the caller's instance, so callers see the new state."""
    for field in Fulfillment._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    if hasattr(target, "_prefetched_objects_cache"):
        target._prefetched_objects_cache = {}
    return target


# ------------------------------------------------------------------------------------- start


def start_fulfillment(
    *, store: Store, order_id: Any, actor: str = "system", order: Order | None = None
) -> Fulfillment:
    """Open the pick list of a paid order and move the order to `fulfilling`.

    Idempotent: one fulfillment per order (the OneToOne holds it); a second call returns the first.
    Refused (409) when the order is not `paid` — e.g. it was cancelled before we got to it.
    `order`: the order the caller's transaction just marked paid (the inline handler of
    `order.paid`): locked already, paid once by its table, so it has no pick list yet — opened
    with no savepoint and no second read."""
    if order is not None and order.pk == order_id:
        return _open_pick_list(store, order, actor)
    with transaction.atomic():
        order = lock_order_or_404(store, order_id)
        existing = Fulfillment.all_stores.filter(store=store, order=order).first()
        if existing is not None:
            return existing
        return _open_pick_list(store, order, actor)


def _open_pick_list(store: Store, order: Order, actor: str) -> Fulfillment:
    if order.status != OrderStatus.PAID:
        raise InvalidTransition(
            f"Order #{order.number} is '{order.status}', not paid: nothing to fulfil.",
            extra={"from": order.status, "to": OrderStatus.FULFILLING},
        )
    fulfillment = Fulfillment.all_stores.create(store=store, order=order)
    lines = [
        FulfillmentLine(store=store, fulfillment=fulfillment, sku=i.sku, name=i.name, quantity=i.quantity)
        for i in order.items.all().order_by("id")
    ]
    FulfillmentLine.all_stores.bulk_create(lines)
    emit(
        FulfillmentCreated(lines=[{"sku": line.sku, "quantity": line.quantity} for line in lines]),
        store=store,
        order_id=order.pk,
        subject=fulfillment,
        actor=actor,
    )
    order_services.start_fulfilling(order=order, actor=actor)
    return fulfillment


# -------------------------------------------------------------------------------------- pick


def _validate_pick_lines(current: list[FulfillmentLine], lines: list[dict[str, Any]]) -> dict[str, int]:
    known = {line.sku: line.quantity for line in current}
    fields: dict[str, list[str]] = {}
    wanted: dict[str, int] = {}
    for i, item in enumerate(lines):
        sku, picked = item.get("sku"), item.get("picked")
        if sku not in known:
            fields[f"lines[{i}].sku"] = [f"'{sku}' is not on this pick list."]
            continue
        if sku in wanted:
            fields[f"lines[{i}].sku"] = [f"'{sku}' appears more than once."]
            continue
        if isinstance(picked, bool) or not isinstance(picked, int) or not 0 <= picked <= known[sku]:
            fields[f"lines[{i}].picked"] = [f"Must be a whole number from 0 to {known[sku]}."]
            continue
        wanted[sku] = picked
    if fields:
        raise ValidationFailed(fields=fields)
    return wanted


@atomic_with_events()
def pick(
    *, store: Store, fulfillment: Fulfillment, lines: list[dict[str, Any]] | None = None, actor: str
) -> Fulfillment:
    """Record picked quantities (`lines` = [{"sku", "picked"}]; omitted = everything picked).

    `picked` is the line's total picked so far, so a retried or corrected pick never double-counts.
    The first pick moves pending → picking; completing the list records who/when and emits
    `fulfillment.picked`. Packing needs every line fully picked. The lines are read once, under
    the fulfillment's lock, and the changed ones written in one statement, whatever their number."""
    order, fresh = _lock(store, fulfillment)
    if fresh.status not in (FS.PENDING, FS.PICKING):
        raise InvalidTransition(
            f"Cannot pick: the fulfillment is '{fresh.status}'.",
            extra={"from": fresh.status, "to": FS.PICKING},
        )
    current = list(FulfillmentLine.all_stores.filter(store=store, fulfillment=fresh).order_by("id"))
    if lines is None:
        wanted = {line.sku: line.quantity for line in current}
    else:
        wanted = _validate_pick_lines(current, lines)
    changed = [line for line in current if line.sku in wanted and line.picked != wanted[line.sku]]
    for line in changed:
        line.picked = wanted[line.sku]
    if changed:
        FulfillmentLine.all_stores.bulk_update(changed, ["picked"])
    payload = [{"sku": line.sku, "quantity": line.quantity, "picked": line.picked} for line in current]
    complete = all(x["picked"] >= x["quantity"] for x in payload)
    now = timezone.now()
    finished = {"picked_by": actor, "picked_at": now} if complete and fresh.picked_at is None else {}
    if fresh.status == FS.PENDING:
        # the first pick and (when it picks everything) its completion: one UPDATE
        transition(
            fresh, FS.PICKING, reason="pick started", actor=actor, data={"lines": payload}, updates=finished
        )
        order_services.record_fulfillment_progress(order=order, status=FulfillmentStatus.PICKING)
    elif finished:
        Fulfillment.all_stores.filter(pk=fresh.pk).update(**finished, updated_at=now)
        fresh.picked_by, fresh.picked_at, fresh.updated_at = actor, now, now
    if finished:
        emit(FulfillmentPicked(lines=payload), store=store, order_id=order.pk, subject=fresh, actor=actor)
    elif not complete and fresh.picked_at is not None:  # a correction re-opened the pick list
        Fulfillment.all_stores.filter(pk=fresh.pk).update(picked_by="", picked_at=None, updated_at=now)
        fresh.picked_by, fresh.picked_at = "", None
    return _refresh_into(fulfillment, fresh)


# -------------------------------------------------------------------------------------- pack


@atomic_with_events()
def pack(
    *, store: Store, fulfillment: Fulfillment, packages: int, weight_grams: int, actor: str
) -> Fulfillment:
    """picking → packed, once every line is fully picked; records package count and weight."""
    fields: dict[str, list[str]] = {}
    if isinstance(packages, bool) or not isinstance(packages, int) or not 1 <= packages <= 1000:
        fields["packages"] = ["Must be a whole number from 1 to 1000."]
    if isinstance(weight_grams, bool) or not isinstance(weight_grams, int) or not 1 <= weight_grams <= 10**7:
        fields["weight_grams"] = ["Must be a whole number of grams from 1 to 10000000."]
    if fields:
        raise ValidationFailed(fields=fields)
    order, fresh = _lock(store, fulfillment)
    if fresh.status == FS.PICKING and not fresh.is_fully_picked:
        raise InvalidTransition(
            "Cannot pack: not every line is fully picked.", extra={"from": fresh.status, "to": FS.PACKED}
        )
    now = timezone.now()
    transition(
        fresh,
        FS.PACKED,
        reason="packed",
        actor=actor,
        updates={
            "package_count": packages,
            "weight_grams": weight_grams,
            "packed_by": actor,
            "packed_at": now,
        },
        data={"packages": packages, "weight_grams": weight_grams},
    )
    order_services.record_fulfillment_progress(order=order, status=FulfillmentStatus.PACKED)
    return _refresh_into(fulfillment, fresh)


# ------------------------------------------------------------------------------------- ready


@atomic_with_events()
def mark_ready(*, store: Store, fulfillment: Fulfillment, actor: str) -> Fulfillment:
    """packed → ready_to_ship; the order follows to `ready_to_ship`."""
    order, fresh = _lock(store, fulfillment)
    now = timezone.now()
    transition(
        fresh,
        FS.READY_TO_SHIP,
        reason="ready to ship",
        actor=actor,
        updates={"ready_by": actor, "ready_at": now},
    )
    order_services.mark_ready_to_ship(order=order, actor=actor)
    return _refresh_into(fulfillment, fresh)


# -------------------------------------------------------------------------------------- ship


def default_carrier() -> str:
    return getattr(settings, "FULFILLMENT_DEFAULT_CARRIER", "") or next(iter(settings.CARRIER_SECRETS))


@transaction.atomic  # its label is a savepoint of its own: held events would be flushed there
def ship(*, store: Store, fulfillment: Fulfillment, carrier: str, actor: str) -> Shipment:
    """ready_to_ship → shipped: buy the label (a Shipment with a tracking number and an estimated
    delivery date, `shipment.label_created`) and move the order to `shipped`."""
    if carrier not in settings.CARRIER_SECRETS:
        raise ValidationFailed(
            fields={"carrier": [f"Unknown carrier; one of: {', '.join(sorted(settings.CARRIER_SECRETS))}."]}
        )
    order, fresh = _lock(store, fulfillment)
    now = timezone.now()
    transition(
        fresh,
        FS.SHIPPED,
        reason="handed to carrier",
        actor=actor,
        updates={"shipped_by": actor, "shipped_at": now},
        data={"carrier": carrier},
    )
    shipment = delivery.create_shipment(store=store, fulfillment=fresh, carrier=carrier, actor=actor)
    order_services.mark_shipped(
        order=order, actor=actor, carrier=carrier, tracking_number=shipment.tracking_number, shipped_at=now
    )
    _refresh_into(fulfillment, fresh)
    return shipment


# ------------------------------------------------------------------------------------ cancel


@transaction.atomic
def cancel_fulfillment(
    *, store: Store, order_id: Any, reason: str = "order cancelled", actor: str = "system"
) -> Fulfillment | None:
    """Stop the warehouse work for a cancelled order (stock is returned by the orders cancel
    service, not here). No fulfillment yet → None; already cancelled → unchanged (no-op);
    shipped → 409 invalid_transition (the parcel has left)."""
    order = lock_order_or_404(store, order_id)
    fulfillment = Fulfillment.all_stores.select_for_update().filter(store=store, order=order).first()
    if fulfillment is None or fulfillment.status == FS.CANCELLED:
        return fulfillment
    transition(
        fulfillment,
        FS.CANCELLED,
        reason=reason,
        actor=actor,
        updates={"cancelled_by": actor, "cancelled_at": timezone.now()},
    )
    order_services.record_fulfillment_progress(order=order, status=FulfillmentStatus.CANCELLED)
    return fulfillment


# --------------------------------------------------------------------------------- autopilot


def autopilot_enabled(store: Store) -> bool:
    """The store's `fulfillment_autopilot` switch; None follows settings.FULFILLMENT_AUTOPILOT."""
    value = store.setting("fulfillment_autopilot")
    return bool(settings.FULFILLMENT_AUTOPILOT if value is None else value)


def autopilot_advance(*, store: Store, fulfillment: Fulfillment, fresh: bool = False) -> str | None:
    """Do the one next step the fulfillment's current state calls for (demo mode).

    Looking at the state each time makes a redelivered or duplicated step harmless: the worst
    case is a 409 from the conditional update, which the task treats as "someone else did it".
    `fresh=True` says the instance was just read (the task's): no second read. Returns the step
    done, or None when there is nothing left to do."""
    if not fresh:
        fulfillment.refresh_from_db()
    status = fulfillment.status
    lines = list(fulfillment.lines.all()) if status == FS.PICKING else []
    if status == FS.PENDING or (status == FS.PICKING and not all(x.picked >= x.quantity for x in lines)):
        pick(store=store, fulfillment=fulfillment, actor=AUTOPILOT_ACTOR)
        return "pick"
    if status == FS.PICKING:
        units = sum(line.quantity for line in lines)
        pack(
            store=store,
            fulfillment=fulfillment,
            packages=1,
            weight_grams=max(1, units * DEFAULT_UNIT_WEIGHT_GRAMS),
            actor=AUTOPILOT_ACTOR,
        )
        return "pack"
    if status == FS.PACKED:
        mark_ready(store=store, fulfillment=fulfillment, actor=AUTOPILOT_ACTOR)
        return "ready"
    if status == FS.READY_TO_SHIP:
        ship(store=store, fulfillment=fulfillment, carrier=default_carrier(), actor=AUTOPILOT_ACTOR)
        return "ship"
    return None
