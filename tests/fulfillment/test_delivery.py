"""The shipment machine, its events, carrier updates and the carrier simulator."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fulfillment import delivery
from fulfillment.models import CarrierEvent, Shipment
from orderflow.core.errors import InvalidTransition, NotFound
from orderflow.core.events import Event
from orders.models import Order
from tests.fulfillment.helpers import shipment_in, shipped

pytestmark = pytest.mark.django_db

SS = Shipment.Status
TARGETS = [s for s in SS.values if s != SS.LABEL_CREATED]
TRACKING_FIELDS = {"carrier", "tracking_number", "status", "estimated_delivery", "occurred_at"}


def test_shipment_table_is_the_documented_machine():
    assert {k: set(v) for k, v in Shipment.TRANSITIONS.items()} == {
        "label_created": {"in_transit"},
        "in_transit": {"out_for_delivery", "exception"},
        "out_for_delivery": {"delivered", "exception"},
        "exception": {"in_transit", "returned"},
        "delivered": set(),
        "returned": set(),
    }


@pytest.mark.parametrize("frm", list(SS.values))
@pytest.mark.parametrize("to", TARGETS)
def test_every_shipment_transition_is_allowed_or_refused_per_the_table(store, frm, to):
    s = shipment_in(store, frm)
    if to in Shipment.TRANSITIONS[frm]:
        delivery.advance_shipment(shipment=s, to=to, actor="t")
        s.refresh_from_db()
        assert s.status == to
        assert Event.all_stores.filter(topic=f"shipment.{to}", subject_id=str(s.pk)).exists()
    else:
        with pytest.raises(InvalidTransition):
            delivery.advance_shipment(shipment=s, to=to, actor="t")
        s.refresh_from_db()
        assert s.status == frm


def test_shipment_events_carry_the_tracking_fields_in_order(store):
    s = shipped(store)
    for to in ("in_transit", "exception", "in_transit", "out_for_delivery", "delivered"):
        delivery.advance_shipment(shipment=s, to=to, actor="t")
    events = list(Event.all_stores.filter(order_id=s.order_id, topic__startswith="shipment.").order_by("id"))
    assert [e.topic for e in events] == [
        "shipment.label_created",
        "shipment.in_transit",
        "shipment.exception",
        "shipment.in_transit",
        "shipment.out_for_delivery",
        "shipment.delivered",
    ]
    for e in events:
        assert TRACKING_FIELDS <= set(e.data)
        assert e.data["status"] == e.topic.split(".", 1)[1]
        assert e.data["carrier"] == "dhl" and e.data["tracking_number"] == s.tracking_number
        assert e.data["estimated_delivery"] == s.estimated_delivery.isoformat()
    times = [e.data["occurred_at"] for e in events]
    assert times == sorted(times)


def test_delivery_moves_the_order_to_delivered(store):
    s = shipment_in(store, SS.OUT_FOR_DELIVERY)
    delivery.advance_shipment(shipment=s, to="delivered", actor="t")
    order = Order.all_stores.get(pk=s.order_id)
    assert (order.status, order.fulfillment_status) == ("delivered", "delivered")
    assert s.delivered_at is not None


def _update(s, status, event_id, occurred_at=None):
    return delivery.apply_carrier_update(
        carrier=s.carrier,
        event_id=event_id,
        tracking_number=s.tracking_number,
        status=status,
        occurred_at=occurred_at or timezone.now(),
    )


def test_carrier_update_applies_a_forward_step(store):
    s = shipped(store)
    result = _update(s, "in_transit", "e1")
    assert (result.applied, result.reason, result.shipment.status) == (True, "applied", "in_transit")
    assert CarrierEvent.all_stores.get(event_id="e1").applied is True


def test_replayed_carrier_event_is_ignored(store):
    s = shipped(store)
    _update(s, "in_transit", "e1")
    result = _update(s, "in_transit", "e1")
    assert (result.applied, result.reason) == (False, "duplicate_event")
    assert Event.all_stores.filter(topic="shipment.in_transit").count() == 1


def test_older_carrier_update_is_ignored(store):
    s = shipped(store)
    now = timezone.now()
    _update(s, "in_transit", "e1", now + timedelta(minutes=5))
    result = _update(s, "out_for_delivery", "e0", now + timedelta(minutes=1))
    assert (result.applied, result.reason) == (False, "out_of_order")
    s.refresh_from_db()
    assert s.status == "in_transit"
    assert CarrierEvent.all_stores.get(event_id="e0").ignored_reason == "out_of_order"


def test_carrier_update_that_is_not_a_step_forward_is_ignored(store):
    s = shipment_in(store, SS.OUT_FOR_DELIVERY)
    result = _update(s, "in_transit", "late-1", timezone.now() + timedelta(minutes=1))
    assert (result.applied, result.reason) == (False, "not_a_forward_transition")
    result = _update(s, "out_for_delivery", "dup-1", timezone.now() + timedelta(minutes=2))
    assert (result.applied, result.reason) == (False, "already_applied")


def test_carrier_update_for_an_unknown_tracking_number_is_404_and_writes_nothing(store):
    s = shipped(store)
    with pytest.raises(NotFound):
        delivery.apply_carrier_update(
            carrier="ups",  # the number exists, but with another carrier
            event_id="x",
            tracking_number=s.tracking_number,
            status="in_transit",
            occurred_at=timezone.now(),
        )
    assert not CarrierEvent.all_stores.exists()


def test_simulator_walks_a_shipment_to_delivered(store, settings):
    settings.CARRIER_EXCEPTION_RATE = 0
    s = shipped(store)
    statuses = [delivery.simulate_carrier_step(shipment=s, step=i) for i in range(4)]
    assert statuses == ["in_transit", "out_for_delivery", "delivered", None]
    assert Order.all_stores.get(pk=s.order_id).status == "delivered"


def test_simulator_exceptions_are_bounded_and_the_parcel_still_arrives(store, settings):
    settings.CARRIER_EXCEPTION_RATE = 1
    s = shipped(store)
    statuses = []
    for i in range(20):
        status = delivery.simulate_carrier_step(shipment=s, step=i)
        if status is None:
            break
        statuses.append(status)
    assert statuses.count("exception") == delivery.SIMULATOR_MAX_EXCEPTIONS
    assert statuses[-1] == "delivered"
    assert Event.all_stores.filter(topic="shipment.exception").count() == delivery.SIMULATOR_MAX_EXCEPTIONS


def test_simulator_step_played_twice_is_ignored(store, settings):
    settings.CARRIER_EXCEPTION_RATE = 0
    s = shipped(store)
    assert delivery.simulate_carrier_step(shipment=s, step=0) == "in_transit"
    assert delivery.simulate_carrier_step(shipment=s, step=0) is None
    s.refresh_from_db()
    assert s.status == "in_transit"


def test_simulator_journey_is_reproducible_per_tracking_number():
    a = [delivery.simulator_rng("DHL000000000042", i).random() for i in range(5)]
    b = [delivery.simulator_rng("DHL000000000042", i).random() for i in range(5)]
    c = [delivery.simulator_rng("DHL000000000043", i).random() for i in range(5)]
    assert a == b != c
