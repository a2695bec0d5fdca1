"""Delivery: the shipment's state machine, carrier updates (signed webhook or the simulator), and
the order following the parcel to `delivered`.

Every shipment change emits `shipment.<state>` whose data carries exactly the fields the order's
tracking view is built from: carrier, tracking_number, status, estimated_delivery, occurred_at.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from orderflow.core.errors import NotFound
from orderflow.core.events import emit
from orderflow.core.statemachine import transition
from orderflow.core.tenancy import Store
from orders import services as order_services
from orders.locks import lock_order, lock_order_or_404

from .events import ShipmentLabelCreated
from .models import CarrierEvent, Fulfillment, Shipment

SS = Shipment.Status

# Days from label to doorstep per carrier (the estimate shown to the shopper).
TRANSIT_DAYS = {"dhl": 2, "ups": 3}
DEFAULT_TRANSIT_DAYS = 3
# The simulator never sends a parcel into more exceptions than this, so every journey ends.
SIMULATOR_MAX_EXCEPTIONS = 2


# ---------------------------------------------------------------------------------- shipment


def new_tracking_number(carrier: str) -> str:
    """Carrier prefix + 12 random digits (secrets: tracking numbers are not guessable)."""
    for _ in range(10):
        number = f"{carrier.upper()[:4]}{secrets.randbelow(10**12):012d}"
        if not Shipment.all_stores.filter(tracking_number=number).exists():
            return number
    raise RuntimeError("could not draw a free tracking number")  # 10 collisions in 10^12: a bug


def create_shipment(*, store: Store, fulfillment: Fulfillment, carrier: str, actor: str) -> Shipment:
    """The label: a shipment in `label_created`, emitting `shipment.label_created`. Called by
    `services.ship` inside its transaction."""
    now = timezone.now()
    shipment = Shipment.all_stores.create(
        store=store,
        fulfillment=fulfillment,
        order_id=fulfillment.order_id,
        carrier=carrier,
        tracking_number=new_tracking_number(carrier),
        label_created_at=now,
        estimated_delivery=(now + timedelta(days=TRANSIT_DAYS.get(carrier, DEFAULT_TRANSIT_DAYS))).date(),
        last_event_at=now,
    )
    emit(
        ShipmentLabelCreated(to=SS.LABEL_CREATED, **shipment.tracking_data()),
        store=store,
        order_id=shipment.order_id,
        subject=shipment,
        actor=actor,
    )
    return shipment


@transaction.atomic
def advance_shipment(
    *,
    shipment: Shipment,
    to: str,
    occurred_at: datetime | None = None,
    actor: str = "system",
    source: str = "operator",
) -> Shipment:
    """Move the shipment along its table (409 `invalid_transition` otherwise), emit
    `shipment.<to>`; `delivered` also moves the order to `delivered`. `occurred_at` is the
    carrier's time of the change (now when an operator does it)."""
    store = shipment.store
    occurred_at = occurred_at or timezone.now()
    order = lock_order_or_404(store, shipment.order_id)
    fresh = Shipment.all_stores.select_for_update().get(pk=shipment.pk)
    last = fresh.last_event_at if fresh.last_event_at and fresh.last_event_at > occurred_at else occurred_at
    updates: dict[str, Any] = {"last_event_at": last}
    if to == SS.DELIVERED:
        updates["delivered_at"] = occurred_at
    data = {
        **fresh.tracking_data(),
        "status": to,
        "occurred_at": occurred_at.isoformat(),
        "source": source,
    }
    transition(fresh, to, reason=f"carrier: {to}", actor=actor, updates=updates, data=data)
    if to == SS.DELIVERED:
        order_services.mark_delivered(
            order=order, actor=actor, carrier=fresh.carrier, tracking_number=fresh.tracking_number
        )
    for name in ("status", "last_event_at", "delivered_at", "updated_at"):
        setattr(shipment, name, getattr(fresh, name))
    return shipment


# ------------------------------------------------------------------------- carrier updates


def carrier_signature(carrier: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>` with the carrier's secret (what carriers send)."""
    secret = settings.CARRIER_SECRETS[carrier].encode()
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_is_valid(carrier: str, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    return hmac.compare_digest(carrier_signature(carrier, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class CarrierUpdateResult:
    applied: bool
    reason: str
    shipment: Shipment

    @property
    def status(self) -> str:
        return "applied" if self.applied else "ignored"


@transaction.atomic
def apply_carrier_update(
    *,
    carrier: str,
    event_id: str,
    tracking_number: str,
    status: str,
    occurred_at: datetime,
    source: str = "webhook",
) -> CarrierUpdateResult:
    """Apply one carrier update, idempotently and in order.

    Unknown tracking number (for that carrier) → 404 and nothing written. A replayed event id,
    an update older than the shipment's last one, or a status that is not a step forward from
    the current one is recorded and ignored (the carrier gets 200 either way, so it stops
    resending)."""
    found = (
        Shipment.all_stores.select_related("store")
        .filter(carrier=carrier, tracking_number=tracking_number)
        .first()
    )
    if found is None:
        raise NotFound("No shipment with that tracking number.", code="unknown_tracking_number")
    # Lock order, then shipment: the same order every other writer of both takes (no deadlock).
    lock_order(found.store, found.order_id)
    shipment = Shipment.all_stores.select_related("store").select_for_update(of=("self",)).get(pk=found.pk)
    try:
        with transaction.atomic():
            record = CarrierEvent.all_stores.create(
                store=shipment.store,
                shipment=shipment,
                carrier=carrier,
                event_id=event_id,
                tracking_number=tracking_number,
                status=status,
                occurred_at=occurred_at,
                source=source,
            )
    except IntegrityError:
        return CarrierUpdateResult(False, "duplicate_event", shipment)
    if shipment.last_event_at and occurred_at < shipment.last_event_at:
        reason = "out_of_order"
    elif status == shipment.status:
        reason = "already_applied"
    elif status not in Shipment.TRANSITIONS.get(shipment.status, set()):
        reason = "not_a_forward_transition"
    else:
        reason = ""
    if reason:
        CarrierEvent.all_stores.filter(pk=record.pk).update(ignored_reason=reason)
        return CarrierUpdateResult(False, reason, shipment)
    advance_shipment(
        shipment=shipment, to=status, occurred_at=occurred_at, actor=f"carrier:{carrier}", source=source
    )
    CarrierEvent.all_stores.filter(pk=record.pk).update(applied=True)
    return CarrierUpdateResult(True, "applied", shipment)


# ------------------------------------------------------------------------------- simulator


def simulator_rng(tracking_number: str, step: int) -> random.Random:
    """Seeded per (tracking number, step): the same shipment always takes the same journey
    (hashlib, not hash(): Python salts str hashes per process)."""
    digest = hashlib.sha256(f"{tracking_number}:{step}".encode()).hexdigest()
    return random.Random(int(digest[:16], 16))


def simulated_next_status(shipment: Shipment, step: int, exceptions_so_far: int) -> str | None:
    """label_created → in_transit → out_for_delivery → delivered, with CARRIER_EXCEPTION_RATE
    chance of an exception on the road (after which the parcel goes back in transit)."""
    current = shipment.status
    if current in (SS.DELIVERED, SS.RETURNED):
        return None
    if current in (SS.LABEL_CREATED, SS.EXCEPTION):
        return SS.IN_TRANSIT
    rate = settings.CARRIER_EXCEPTION_RATE
    if (
        exceptions_so_far < SIMULATOR_MAX_EXCEPTIONS
        and simulator_rng(shipment.tracking_number, step).random() < rate
    ):
        return SS.EXCEPTION
    return SS.OUT_FOR_DELIVERY if current == SS.IN_TRANSIT else SS.DELIVERED


def simulate_carrier_step(*, shipment: Shipment, step: int) -> str | None:
    """Play the carrier for one step, through the same path a real carrier update takes
    (event id `sim-<tracking>-<step>`, so a redelivered step is ignored as a replay).

    Returns the shipment's status after the step, or None when the journey is already over or
    this step was already played (the caller then stops its chain)."""
    events = CarrierEvent.all_stores.filter(store=shipment.store_id, shipment=shipment, source="simulator")
    if events.count() != step:
        return None  # a duplicate of a step already played (or from a stale chain)
    shipment.refresh_from_db()
    to = simulated_next_status(shipment, step, events.filter(status=SS.EXCEPTION).count())
    if to is None:
        return None
    result = apply_carrier_update(
        carrier=shipment.carrier,
        event_id=f"sim-{shipment.tracking_number}-{step}",
        tracking_number=shipment.tracking_number,
        status=to,
        occurred_at=timezone.now(),
        source="simulator",
    )
    return result.shipment.status
