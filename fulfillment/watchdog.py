"""Find demo drivers whose chain broke.

The autopilot and the carrier simulator each re-enqueue their next step after commit. If the
broker is down at that moment (or a worker dies between popping the message and recording it as
unacked), the chain stops and the order sits in `fulfilling` or `shipped` for ever. Beat's
`fulfillment.resume_stalled` asks these selectors what should have moved long ago and re-enqueues
the next step; both steps look at the current state, so a duplicate is harmless."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import CarrierEvent, Fulfillment, Shipment
from .services import autopilot_enabled


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
