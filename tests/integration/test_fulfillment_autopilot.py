"""Demo mode end to end through a real worker: a paid order walks pick → pack → ready → ship and
the simulated carrier delivers it, with the fast clock of settings_test."""

import pytest
from django.db import transaction

from fulfillment.models import Fulfillment, Shipment
from orderflow.core.events import Event
from orders import services as order_services
from orders.models import Order
from tests.conftest import wait_until
from tests.fulfillment.helpers import make_paid_order

DEMO = {"FULFILLMENT_AUTOPILOT": "1", "CARRIER_SIMULATOR": "1"}


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_autopilot_and_carrier_simulator_take_a_paid_order_to_delivered(start_worker, store):
    start_worker(env=DEMO)
    store.settings = {**store.settings, "fulfillment_autopilot": True}  # read where the payment is recorded
    store.save(update_fields=["settings"])
    order = make_paid_order(store, ("SKU-A", 2), ("SKU-B", 1))
    Order.all_stores.filter(pk=order.pk).update(status=Order.Status.PAYMENT_PROCESSING)
    order.refresh_from_db()
    with transaction.atomic():  # as payments records a captured charge
        order_services.mark_paid(
            order=order, actor="payments", charge_id="ch_1", amount=order.total, attempts=1
        )

    wait_until(
        lambda: Order.all_stores.filter(pk=order.pk, status="delivered").exists(),
        timeout=60,
        message="the order to be delivered",
    )
    order.refresh_from_db()
    assert order.fulfillment_status == "delivered"
    fulfillment = Fulfillment.all_stores.get(order=order)
    assert fulfillment.status == "shipped"
    assert fulfillment.picked_by == fulfillment.packed_by == fulfillment.ready_by == "autopilot"
    shipment = Shipment.all_stores.get(fulfillment=fulfillment)
    assert shipment.status == "delivered" and shipment.delivered_at is not None

    events = list(Event.all_stores.filter(order_id=order.pk).order_by("id"))
    order_steps = [e.topic for e in events if e.topic.startswith("order.")]
    assert order_steps == [
        "order.paid",
        "order.fulfilling",
        "order.ready_to_ship",
        "order.shipped",
        "order.delivered",
    ]
    ful_steps = [e.topic for e in events if e.topic.startswith("fulfillment.")]
    assert ful_steps == [
        "fulfillment.created",
        "fulfillment.picking",
        "fulfillment.picked",
        "fulfillment.packed",
        "fulfillment.ready_to_ship",
        "fulfillment.shipped",
    ]
    tracking = [e for e in events if e.topic.startswith("shipment.")]
    assert [e.topic for e in tracking] == [
        "shipment.label_created",
        "shipment.in_transit",
        "shipment.out_for_delivery",
        "shipment.delivered",
    ]
    for e in tracking:
        assert e.data["tracking_number"] == shipment.tracking_number
        assert e.data["carrier"] == shipment.carrier and e.data["status"] == e.topic.split(".")[1]
        assert e.data["estimated_delivery"] and e.data["occurred_at"]
