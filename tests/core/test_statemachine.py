"""The one transition() helper: table-driven, conditional, and always leaves an event."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orderflow.core.errors import InvalidTransition
from orderflow.core.events import Event
from orderflow.core.statemachine import graph, transition
from orderflow.core.tenancy import use_store
from orders.models import Order

pytestmark = pytest.mark.django_db


def _order(store, status="pending"):
    return Order.all_stores.create(
        store=store, number=1, status=status, customer_email="a@b.co", customer_name="Ada",
        shipping_line1="1 St", shipping_city="Berlin", shipping_postal_code="10115", shipping_country="DE",
        currency="EUR", subtotal=Decimal("10.00"), total=Decimal("10.00"),
    )  # fmt: skip


def test_allowed_transition_saves_and_emits_its_event(store):
    order = _order(store)
    transition(order, "payment_processing", reason="fraud approved", actor="system")
    assert Order.all_stores.get(pk=order.pk).status == "payment_processing"
    event = Event.all_stores.get(topic="order.payment_processing")
    assert event.order_id == order.pk
    assert event.data["from"] == "pending" and event.data["reason"] == "fraud approved"


def test_transition_outside_the_table_is_refused_and_writes_nothing(store):
    order = _order(store, status="shipped")
    with pytest.raises(InvalidTransition) as exc:
        transition(order, "cancelled")
    assert exc.value.status == 409 and exc.value.code == "invalid_transition"
    assert Order.all_stores.get(pk=order.pk).status == "shipped"
    assert not Event.all_stores.exists()


def test_concurrent_change_is_detected_not_overwritten(store):
    order = _order(store)
    stale = Order.all_stores.get(pk=order.pk)
    transition(order, "cancelled")
    with pytest.raises(InvalidTransition):
        transition(stale, "payment_processing")
    assert Order.all_stores.get(pk=order.pk).status == "cancelled"


def test_graph_is_drawn_from_the_table():
    g = graph(Order)
    assert g["pending"] == sorted(str(s) for s in Order.TRANSITIONS["pending"])
    assert g["delivered"] == []


def _store_reads(ctx) -> int:
    return sum('FROM "core_store"' in q["sql"] for q in ctx.captured_queries)


def test_a_fresh_copy_in_its_stores_context_takes_the_store_from_the_context_not_a_query(store):
    _order(store)
    with use_store(store):
        fresh = Order.all_stores.select_for_update().get()  # as the services' _lock reads it
        with CaptureQueriesContext(connection) as ctx:
            transition(fresh, "payment_processing", actor="system")
    assert _store_reads(ctx) == 0
    assert Event.all_stores.get(topic="order.payment_processing").store_id == store.pk


def test_outside_its_stores_context_the_event_still_names_the_objects_own_store(store, other_store):
    _order(store)
    with use_store(other_store):  # another store's context must never lend its store
        fresh = Order.all_stores.get()
        with CaptureQueriesContext(connection) as ctx:
            transition(fresh, "payment_processing", actor="system")
    assert _store_reads(ctx) == 1
    assert Event.all_stores.get(topic="order.payment_processing").store_id == store.pk
