"""Handlers with nothing to do for most orders cost no Celery message: their publish-time filters."""

from decimal import Decimal

import pytest

from orderflow.core.events import Event, registered_handlers
from orders.models import Order

pytestmark = pytest.mark.django_db


def _event(store, topic, order_id=None, **data):
    return Event(store=store, topic=topic, order_id=order_id, data=data)


def _handler(suffix):
    return next(h for name, h in registered_handlers().items() if name.endswith(suffix))


def test_fraud_review_resolver_skips_orders_approved_straight_from_pending(store):
    handler = _handler("order_left_review")
    assert not handler.wanted_for(_event(store, "order.payment_processing", **{"from": "pending"}))
    assert handler.wanted_for(_event(store, "order.payment_processing", **{"from": "fraud_review"}))
    assert handler.wanted_for(_event(store, "order.cancelled", **{"from": "pending"}))


def test_late_charge_refund_runs_only_for_cancelled_or_expired_orders(store):
    handler = _handler("refund_if_order_gone")
    order = Order.all_stores.create(
        store=store, number=1, status="paid", customer_email="a@b.co", customer_name="Ada",
        shipping_line1="1 St", shipping_city="Berlin", shipping_postal_code="10115", shipping_country="DE",
        currency="EUR", subtotal=Decimal("1.00"), total=Decimal("1.00"),
    )  # fmt: skip
    assert not handler.wanted_for(_event(store, "payment.processed", order_id=order.pk))
    Order.all_stores.filter(pk=order.pk).update(status="cancelled")
    assert handler.wanted_for(_event(store, "payment.processed", order_id=order.pk))


def test_late_charge_refund_filter_reads_the_order_state_the_event_recorded(store, django_assert_num_queries):
    """The charge's event says whether its order was gone when it was recorded: no read. A row
    from before that field falls back to reading the order (above)."""
    handler = _handler("refund_if_order_gone")
    with django_assert_num_queries(0):
        assert handler.wanted_for(_event(store, "payment.processed", order_id=None, order_gone=True))
        assert not handler.wanted_for(_event(store, "payment.processed", order_id=None, order_gone=False))


def test_carrier_simulator_handler_only_when_the_simulator_is_on(store, settings):
    handler = _handler("start_carrier_simulator")
    settings.CARRIER_SIMULATOR = False
    assert not handler.wanted_for(_event(store, "shipment.label_created"))
    settings.CARRIER_SIMULATOR = True
    assert handler.wanted_for(_event(store, "shipment.label_created"))


def test_payment_retrying_resolver_skips_charges_that_succeeded_first_time(store):
    handler = _handler("alerts.receivers.payment_processed")
    assert not handler.wanted_for(_event(store, "payment.processed", attempts=1))
    assert handler.wanted_for(_event(store, "payment.processed", attempts=3))
    assert handler.wanted_for(_event(store, "payment.processed"))  # unknown: let it through
