"""Fulfillment's reconciler sweep (run by `core.reconcile`): demo drivers whose chain broke.

The autopilot and the carrier simulator each re-enqueue their next step after commit. If the
broker is down at that moment (or a worker dies between popping the message and recording it as
unacked), the chain stops and the order sits in `fulfilling` or `shipped` for ever. The sweep asks
these selectors what should have moved long ago and re-enqueues the next step; both steps look at
the current state, so a duplicate is harmless. It reads only fulfillment's own rows, and runs
even while the order-flow queues are deep (its steps queue on `fulfillment`, not behind them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from orderflow.core.reconcile import Sweep, reconciler

from .models import CarrierEvent, Fulfillment, Shipment
from .services import autopilot_enabled
from .tasks import autopilot_step, simulate_carrier


def _cutoff(step_seconds: float, now: datetime | None) -> datetime:
    wait = max(settings.RECONCILE_STUCK_AFTER_SECONDS, 3 * step_seconds)
    return (now or timezone.now()) - timedelta(seconds=wait)


def stalled_fulfillments(*, batch: int = 200, now: datetime | None = None) -> list[tuple[int, int]]:
    """(fulfillment id, store id) of autopilot fulfillments that stopped short of shipping."""
    rows = (
        Fulfillment.all_stores.select_related("store")
        .exclude(status__in=[Fulfillment.Status.SHIPPED, Fulfillment.Status.CANCELLED])
        .filter(updated_at__lt=_cutoff(settings.FULFILLMENT_AUTOPILOT_STEP_SECONDS, now))
        .order_by("updated_at")[:batch]
    )
    return [(f.pk, f.store_id) for f in rows if autopilot_enabled(f.store)]


def stalled_shipments(*, batch: int = 200, now: datetime | None = None) -> list[tuple[int, int, int]]:
    """(shipment id, store id, next simulator step) of simulated parcels that stopped moving."""
    if not settings.CARRIER_SIMULATOR:
        return []
    rows = (
        Shipment.all_stores.exclude(status__in=[Shipment.Status.DELIVERED, Shipment.Status.RETURNED])
        .filter(updated_at__lt=_cutoff(settings.CARRIER_STEP_SECONDS, now))
        .order_by("updated_at")[:batch]
    )
    return [
        (s.pk, s.store_id, CarrierEvent.all_stores.filter(shipment=s, source="simulator").count())
        for s in rows
    ]


@reconciler("fulfillment", order=40)
def resume_stalled(sweep: Sweep) -> None:
    """Restart the autopilot / carrier chains a lost message broke."""
    fulfillments = stalled_fulfillments(batch=sweep.batch, now=sweep.now)
    for fulfillment_id, store_id in fulfillments:
        autopilot_step.apply_async((fulfillment_id, store_id))
    shipments = stalled_shipments(batch=sweep.batch, now=sweep.now)
    for shipment_id, store_id, step in shipments:
        simulate_carrier.apply_async((shipment_id, store_id), {"step": step})
    sweep.count("autopilot_resumed", len(fulfillments))
    sweep.count("carrier_resumed", len(shipments))
