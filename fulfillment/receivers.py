"""Event handlers of the fulfillment step (thin: event → service call or task). Opening the pick
list runs inline, in the transaction that marks the order paid; the others are tasks."""

from __future__ import annotations

import logging

from django.conf import settings

from orderflow.core.errors import DomainError
from orderflow.core.events import Event, on_event
from orders.events import OrderMoved

from . import services, tasks
from .models import Fulfillment

log = logging.getLogger("orderflow.fulfillment")


@on_event("order.paid", inline=True)
def open_fulfillment(event: Event) -> None:
    """A paid order gets its pick list in the transaction that records the payment (so no paid
    order waits on a lost message for its fulfillment); in demo mode the autopilot takes it from
    there, after that transaction commits."""
    fulfillment = services.start_fulfillment(
        store=event.store, order_id=event.order_id, order=event.emitted_subject
    )
    if fulfillment.status == Fulfillment.Status.PENDING and services.autopilot_enabled(event.store):
        tasks.autopilot_step.apply_async_on_commit(
            (fulfillment.pk, event.store.pk), countdown=settings.FULFILLMENT_AUTOPILOT_STEP_SECONDS
        )


@on_event("order.cancelled", queue="fulfillment")
def cancel_fulfillment(event: Event) -> None:
    """Stop the warehouse work for a cancelled order (the orders service returns the stock)."""
    try:
        services.cancel_fulfillment(
            store=event.store,
            order_id=event.order_id,
            reason=OrderMoved.of(event).reason or "order cancelled",
        )
    except DomainError as exc:  # shipped already: the order's own table should have refused this
        log.error("fulfillment of cancelled order %s not cancelled: %s", event.order_id, exc.message)


def _simulator_on(event: Event) -> bool:
    return bool(settings.CARRIER_SIMULATOR)


@on_event("shipment.label_created", queue="fulfillment", atomic=False, when=_simulator_on)
def start_carrier_simulator(event: Event) -> None:
    """In demo mode the simulated carrier picks up every new parcel."""
    if settings.CARRIER_SIMULATOR and event.subject_id:
        tasks.simulate_carrier.apply_async(
            (int(event.subject_id), event.store.pk), {"step": 0}, countdown=settings.CARRIER_STEP_SECONDS
        )
