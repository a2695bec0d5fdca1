"""Reads of the fulfillment step (store first, always)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from orderflow.core.errors import NotFound, ValidationFailed
from orderflow.core.tenancy import Store

from .models import Fulfillment, Shipment


def list_fulfillments(store: Store, *, status: str | None = None) -> QuerySet[Fulfillment]:
    qs = (
        Fulfillment.objects.for_store(store)
        .select_related("order", "store")
        .prefetch_related("lines")
        .order_by("-created_at", "-id")
    )
    return filter_fulfillments(qs, status=status)


def filter_fulfillments(qs: QuerySet[Fulfillment], *, status: str | None = None) -> QuerySet[Fulfillment]:
    if status:
        if status not in Fulfillment.Status.values:
            raise ValidationFailed(fields={"status": [f"One of: {', '.join(Fulfillment.Status.values)}."]})
        qs = qs.filter(status=status)
    return qs


def get_fulfillment(store: Store, fulfillment_id: Any) -> Fulfillment:
    """One fulfillment of this store; another store's id is simply not found."""
    try:
        fulfillment_id = int(fulfillment_id)
    except (TypeError, ValueError):
        raise NotFound("No such fulfillment.")
    fulfillment = (
        Fulfillment.objects.for_store(store)
        .select_related("order", "store")
        .prefetch_related("lines")
        .filter(pk=fulfillment_id)
        .first()
    )
    if fulfillment is None:
        raise NotFound("No such fulfillment.")
    return fulfillment


def shipment_for_order(store: Store, order_id: Any) -> Shipment | None:
    return Shipment.objects.for_store(store).filter(order_id=order_id).order_by("-created_at").first()


# ------------------------------------------------------- vocabulary for other apps


def state_machines() -> dict[str, type]:
    """The machines this app declares (their TRANSITIONS tables), by workflow step: what the
    dashboard's workflow page draws, without reaching into fulfillment's models."""
    return {"fulfillment": Fulfillment, "shipment": Shipment}


def next_steps(fulfillment: Fulfillment | None) -> set[str]:
    """The services the fulfillment's state accepts now, by name: `pick` (pending or picking: a
    pick may come in several goes), `pack`, `mark_ready`, `ship`. Empty without a fulfillment."""
    if fulfillment is None:
        return set()
    fs = Fulfillment.Status
    return {
        fs.PENDING: {"pick"},
        fs.PICKING: {"pick", "pack"},
        fs.PACKED: {"mark_ready"},
        fs.READY_TO_SHIP: {"ship"},
    }.get(fulfillment.status, set())
