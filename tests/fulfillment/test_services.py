"""The fulfillment machine and the order following it, through the services."""

import pytest
from django.db import transaction

from fulfillment import services
from fulfillment.models import Fulfillment, FulfillmentLine
from orderflow.core.errors import InvalidTransition, ValidationFailed
from orderflow.core.events import Event, run_handler_once
from orderflow.core.statemachine import transition
from orders import services as order_services
from orders.models import Order
from tests.fulfillment.helpers import make_paid_order, started, walk_to

pytestmark = pytest.mark.django_db

FS = Fulfillment.Status
STATES = list(FS.values)


def test_transition_table_is_the_documented_pipeline():
    assert {k: set(v) for k, v in Fulfillment.TRANSITIONS.items()} == {
        "pending": {"picking", "cancelled"},
        "picking": {"packed", "cancelled"},
        "packed": {"ready_to_ship", "cancelled"},
        "ready_to_ship": {"shipped", "cancelled"},
        "shipped": set(),
        "cancelled": set(),
    }


def _do(store, f, to):
    if to == FS.PICKING:
        return services.pick(store=store, fulfillment=f, actor="t")
    if to == FS.PACKED:
        return services.pack(store=store, fulfillment=f, packages=1, weight_grams=500, actor="t")
    if to == FS.READY_TO_SHIP:
        return services.mark_ready(store=store, fulfillment=f, actor="t")
    if to == FS.SHIPPED:
        return services.ship(store=store, fulfillment=f, carrier="dhl", actor="t")
    return services.cancel_fulfillment(store=store, order_id=f.order_id)


def _expected(frm, to):
    """The table, plus two deliberate non-transitions: picking again while picking records more
    picks, and cancelling a cancelled fulfillment is a no-op."""
    return to in Fulfillment.TRANSITIONS[frm] or (frm, to) in {
        (FS.PICKING, FS.PICKING),
        (FS.CANCELLED, FS.CANCELLED),
    }


@pytest.mark.parametrize("frm", STATES)
@pytest.mark.parametrize("to", [s for s in STATES if s != FS.PENDING])
def test_every_fulfillment_transition_is_allowed_or_refused_per_the_table(store, frm, to):
    f = walk_to(store, frm)
    if _expected(frm, to):
        _do(store, f, to)
        f.refresh_from_db()
        assert f.status == to
    else:
        with pytest.raises(InvalidTransition) as exc:
            _do(store, f, to)
        assert exc.value.status == 409 and exc.value.code == "invalid_transition"
        f.refresh_from_db()
        assert f.status == frm


def test_start_opens_a_pick_list_and_moves_the_order_to_fulfilling(store, paid_order):
    f = services.start_fulfillment(store=store, order_id=paid_order.pk)
    assert f.status == FS.PENDING
    assert [(x.sku, x.quantity, x.picked) for x in f.lines.all()] == [("SKU-A", 2, 0), ("SKU-B", 1, 0)]
    paid_order.refresh_from_db()
    assert paid_order.status == "fulfilling"
    topics = list(Event.all_stores.filter(order_id=paid_order.pk).values_list("topic", flat=True))
    assert topics == ["fulfillment.created", "order.fulfilling"]


def test_start_is_idempotent_one_fulfillment_per_order(store, paid_order):
    first = services.start_fulfillment(store=store, order_id=paid_order.pk)
    second = services.start_fulfillment(store=store, order_id=paid_order.pk)
    assert first.pk == second.pk
    assert Fulfillment.all_stores.filter(order=paid_order).count() == 1


def test_start_refuses_an_order_that_is_not_paid(store, paid_order):
    transition(paid_order, "cancelled")
    with pytest.raises(InvalidTransition):
        services.start_fulfillment(store=store, order_id=paid_order.pk)
    assert not Fulfillment.all_stores.filter(order=paid_order).exists()


def _processing(order):
    Order.all_stores.filter(pk=order.pk).update(status=Order.Status.PAYMENT_PROCESSING)
    order.refresh_from_db()
    return order


def test_the_pick_list_opens_in_the_transaction_that_marks_the_order_paid(store, paid_order):
    order = _processing(paid_order)
    with transaction.atomic():
        order_services.mark_paid(
            order=order, actor="payments", charge_id="ch_1", amount=order.total, attempts=1
        )
        assert Fulfillment.all_stores.get(order=order).status == FS.PENDING  # not after the commit: in it
    order.refresh_from_db()
    assert order.status == "fulfilling"
    assert [e.topic for e in Event.all_stores.filter(order_id=order.pk).order_by("id")][-3:] == [
        "order.paid",
        "fulfillment.created",
        "order.fulfilling",
    ]


def test_a_payment_that_rolls_back_leaves_no_pick_list(store, paid_order):
    order = _processing(paid_order)
    with pytest.raises(RuntimeError), transaction.atomic():
        order_services.mark_paid(
            order=order, actor="payments", charge_id="ch_1", amount=order.total, attempts=1
        )
        raise RuntimeError("the payment's transaction fails after the order was marked paid")
    order.refresh_from_db()
    assert order.status == "payment_processing"
    assert not Fulfillment.all_stores.filter(order=order).exists()


def test_partial_picks_are_recorded_and_packing_waits_for_the_rest(store):
    f = started(store, ("SKU-A", 3), ("SKU-B", 1))
    services.pick(store=store, fulfillment=f, lines=[{"sku": "SKU-A", "picked": 2}], actor="ann")
    assert f.status == FS.PICKING and f.picked_at is None
    assert dict(f.lines.values_list("sku", "picked")) == {"SKU-A": 2, "SKU-B": 0}
    with pytest.raises(InvalidTransition):
        services.pack(store=store, fulfillment=f, packages=1, weight_grams=100, actor="ann")
    services.pick(
        store=store,
        fulfillment=f,
        lines=[{"sku": "SKU-A", "picked": 3}, {"sku": "SKU-B", "picked": 1}],
        actor="bob",
    )
    assert f.picked_by == "bob" and f.picked_at is not None
    topics = list(Event.all_stores.filter(subject_type="fulfillment").values_list("topic", flat=True))
    assert topics == ["fulfillment.created", "fulfillment.picking", "fulfillment.picked"]
    services.pack(store=store, fulfillment=f, packages=2, weight_grams=1200, actor="cy")
    assert (f.status, f.package_count, f.weight_grams, f.packed_by) == (FS.PACKED, 2, 1200, "cy")


@pytest.mark.parametrize(
    "lines, field",
    [
        ([{"sku": "NOPE", "picked": 1}], "lines[0].sku"),
        ([{"sku": "SKU-A", "picked": 3}], "lines[0].picked"),
        ([{"sku": "SKU-A", "picked": -1}], "lines[0].picked"),
        ([{"sku": "SKU-A", "picked": 1}, {"sku": "SKU-A", "picked": 2}], "lines[1].sku"),
    ],
)
def test_pick_refuses_unknown_skus_and_impossible_counts(store, lines, field):
    f = started(store, ("SKU-A", 2))
    with pytest.raises(ValidationFailed) as exc:
        services.pick(store=store, fulfillment=f, lines=lines, actor="t")
    assert field in exc.value.fields
    f.refresh_from_db()
    assert f.status == FS.PENDING
    assert list(FulfillmentLine.all_stores.filter(fulfillment=f).values_list("picked", flat=True)) == [0]


def test_pack_validates_packages_and_weight(store):
    f = walk_to(store, FS.PICKING)
    with pytest.raises(ValidationFailed) as exc:
        services.pack(store=store, fulfillment=f, packages=0, weight_grams=0, actor="t")
    assert set(exc.value.fields) == {"packages", "weight_grams"}


def test_order_follows_the_fulfillment_to_shipped_with_who_and_when(store):
    f = started(store)
    order = Order.all_stores.get(pk=f.order_id)
    seen = []
    for step in (FS.PICKING, FS.PACKED, FS.READY_TO_SHIP, FS.SHIPPED):
        _do(store, f, step)
        order.refresh_from_db()
        seen.append((order.status, order.fulfillment_status))
    assert seen == [
        ("fulfilling", "picking"),
        ("fulfilling", "packed"),
        ("ready_to_ship", "ready_to_ship"),
        ("shipped", "shipped"),
    ]
    f.refresh_from_db()
    assert all([f.picked_at, f.packed_at, f.ready_at, f.shipped_at, order.shipped_at])
    assert (f.picked_by, f.packed_by, f.ready_by, f.shipped_by) == ("t", "t", "t", "t")
    topics = list(Event.all_stores.filter(order_id=order.pk).values_list("topic", flat=True))
    assert topics == [
        "fulfillment.created",
        "order.fulfilling",
        "fulfillment.picking",
        "fulfillment.picked",
        "fulfillment.packed",
        "fulfillment.ready_to_ship",
        "order.ready_to_ship",
        "fulfillment.shipped",
        "shipment.label_created",
        "order.shipped",
    ]


def test_ship_creates_a_shipment_with_a_tracking_number_and_estimate(store):
    f = walk_to(store, FS.READY_TO_SHIP)
    shipment = services.ship(store=store, fulfillment=f, carrier="ups", actor="t")
    assert shipment.tracking_number.startswith("UPS") and shipment.tracking_number[3:].isdigit()
    assert (
        shipment.status == "label_created" and shipment.estimated_delivery > shipment.label_created_at.date()
    )
    assert shipment.order_id == f.order_id


def test_ship_refuses_an_unknown_carrier(store):
    f = walk_to(store, FS.READY_TO_SHIP)
    with pytest.raises(ValidationFailed) as exc:
        services.ship(store=store, fulfillment=f, carrier="pigeon", actor="t")
    assert "carrier" in exc.value.fields
    f.refresh_from_db()
    assert f.status == FS.READY_TO_SHIP


@pytest.mark.parametrize("frm", [FS.PENDING, FS.PICKING, FS.PACKED, FS.READY_TO_SHIP])
def test_cancelling_the_order_before_shipping_cancels_the_fulfillment(store, frm):
    f = walk_to(store, frm)
    order = Order.all_stores.get(pk=f.order_id)
    transition(order, "cancelled", reason="customer asked")
    event = Event.all_stores.get(order_id=order.pk, topic="order.cancelled")
    assert run_handler_once(event.pk, "fulfillment.receivers.cancel_fulfillment") is True
    f.refresh_from_db()
    order.refresh_from_db()
    assert f.status == FS.CANCELLED and f.cancelled_at is not None
    assert order.fulfillment_status == "cancelled"
    assert Event.all_stores.filter(order_id=order.pk, topic="fulfillment.cancelled").count() == 1


def test_steps_are_refused_once_the_order_is_cancelled_even_before_the_handler_ran(store):
    f = walk_to(store, FS.PICKING)
    transition(Order.all_stores.get(pk=f.order_id), "cancelled")
    with pytest.raises(InvalidTransition):
        services.pack(store=store, fulfillment=f, packages=1, weight_grams=100, actor="t")


def test_cancellation_after_shipping_is_refused_409(store):
    f = walk_to(store, FS.SHIPPED)
    order = Order.all_stores.get(pk=f.order_id)
    with pytest.raises(InvalidTransition) as exc:
        transition(order, "cancelled")
    assert exc.value.status == 409
    with pytest.raises(InvalidTransition) as exc:
        services.cancel_fulfillment(store=store, order_id=order.pk)
    assert exc.value.status == 409
    f.refresh_from_db()
    assert f.status == FS.SHIPPED


def test_cancel_handler_for_an_order_never_fulfilled_does_nothing(store):
    order = make_paid_order(store)
    transition(order, "cancelled")
    event = Event.all_stores.get(order_id=order.pk, topic="order.cancelled")
    assert run_handler_once(event.pk, "fulfillment.receivers.cancel_fulfillment") is True
    assert not Fulfillment.all_stores.filter(order=order).exists()
