"""Celery tasks of the fulfillment step (thin: load by id → call a service → maybe chain on).

Both demo drivers chain themselves: each run does one step and re-enqueues itself with a countdown,
so the journey is visible on the dashboard instead of happening in one instant. A chain a lost
message broke is restarted by fulfillment's reconciler sweep (watchdog.py)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from orderflow.core.errors import DomainError
from orderflow.core.tenancy import Store, use_store

from . import delivery, services
from .models import Fulfillment, Shipment

log = logging.getLogger("orderflow.fulfillment")


@shared_task(name="fulfillment.autopilot_step", acks_late=True, ignore_result=True)
def autopilot_step(fulfillment_id: int, store_id: int) -> str | None:
    """Walk a fulfillment one step (pick → pack → ready → ship) while the autopilot is on."""
    store = Store.objects.filter(pk=store_id).first()
    if store is None or not services.autopilot_enabled(store):
        return None
    with use_store(store):
        fulfillment = Fulfillment.objects.filter(pk=fulfillment_id).first()
        if fulfillment is None:
            return None
        try:
            step = services.autopilot_advance(store=store, fulfillment=fulfillment, fresh=True)
        except DomainError as exc:  # someone else moved it (operator, a twin step, a cancellation)
            log.info("autopilot stopped on fulfillment %s: %s", fulfillment_id, exc.message)
            return None
        if step is not None and step != "ship":
            autopilot_step.apply_async_on_commit(
                (fulfillment_id, store_id), countdown=settings.FULFILLMENT_AUTOPILOT_STEP_SECONDS
            )
        return step


@shared_task(name="fulfillment.simulate_carrier", acks_late=True, ignore_result=True)
def simulate_carrier(shipment_id: int, store_id: int, step: int = 0) -> str | None:
    """Play the carrier for a shipment, one status every CARRIER_STEP_SECONDS, until it ends."""
    if not settings.CARRIER_SIMULATOR:
        return None
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return None
    with use_store(store):
        shipment = Shipment.objects.filter(pk=shipment_id).first()
        if shipment is None:
            return None
        try:
            status = delivery.simulate_carrier_step(shipment=shipment, step=step)
        except DomainError as exc:
            log.info("carrier simulator stopped on shipment %s: %s", shipment_id, exc.message)
            return None
        if status is not None and status not in (Shipment.Status.DELIVERED, Shipment.Status.RETURNED):
            simulate_carrier.apply_async_on_commit(
                (shipment_id, store_id), {"step": step + 1}, countdown=settings.CARRIER_STEP_SECONDS
            )
        return status
