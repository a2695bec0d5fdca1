"""The listener: each topic, through the real event path (emit in a transaction, then
`run_handler_once` as a worker would), opens, bumps or resolves the right alert."""

import uuid

import pytest
from django.db import transaction

from alerts.models import Alert
from orderflow.core.events import handlers_for, run_handler_once, write_event
from orderflow.core.tenancy import use_store
from tests.alerts.support import fire

pytestmark = pytest.mark.django_db


def only(store, **filters) -> Alert:
    return Alert.all_stores.get(store=store, **filters)


# ------------------------------------------------------------------------------- inventory


def test_threshold_reached_opens_low_stock_for_the_sku(store):
    event = fire(store, "inventory.threshold_reached",
                 {"sku": "TSHIRT-M", "available": 3, "threshold": 5, "kind": "low_stock"})  # fmt: skip
    alert = only(store, kind="low_stock")
    assert (alert.subject, alert.severity, alert.status) == ("sku:TSHIRT-M", "warning", "open")
    assert alert.message == "Low stock: TSHIRT-M (3 left, threshold 5)"
    assert alert.event_id == event.pk
    assert alert.data["available"] == 3


def test_threshold_reached_again_bumps_the_same_alert(store):
    fire(
        store,
        "inventory.threshold_reached",
        {"sku": "A", "available": 3, "threshold": 5, "kind": "low_stock"},
    )
    second = fire(store, "inventory.threshold_reached",
                  {"sku": "A", "available": 1, "threshold": 5, "kind": "low_stock"})  # fmt: skip
    alert = only(store, kind="low_stock")
    assert (alert.count, alert.event_id, alert.data["available"]) == (2, second.pk, 1)


def test_out_of_stock_opens_a_critical_alert(store):
    fire(
        store,
        "inventory.threshold_reached",
        {"sku": "A", "available": 0, "threshold": 5, "kind": "out_of_stock"},
    )
    alert = only(store, kind="out_of_stock")
    assert (alert.subject, alert.severity, alert.message) == ("sku:A", "critical", "Out of stock: A")


def test_threshold_reached_without_a_kind_is_inferred_from_available(store):
    fire(store, "inventory.threshold_reached", {"sku": "A", "available": 0})
    fire(store, "inventory.threshold_reached", {"sku": "B", "available": 2})
    assert only(store, subject="sku:A").kind == "out_of_stock"
    assert only(store, subject="sku:B").kind == "low_stock"


def test_low_stock_above_zero_resolves_out_of_stock(store):
    fire(store, "inventory.threshold_reached", {"sku": "A", "available": 0, "kind": "out_of_stock"})
    fire(
        store,
        "inventory.threshold_reached",
        {"sku": "A", "available": 2, "threshold": 5, "kind": "low_stock"},
    )
    assert only(store, kind="out_of_stock").status == "resolved"
    assert only(store, kind="low_stock").status == "open"


def test_forecast_low_opens_low_stock_marked_as_forecast(store):
    fire(store, "inventory.forecast_low", {"sku": "A", "days_of_cover": 2.5, "lead_time_days": 7})
    alert = only(store, kind="low_stock")
    assert alert.data["forecast"] is True
    assert alert.message == "Low stock forecast: A runs out in ~2.5 days (lead time 7 days)"


def test_threshold_cleared_resolves_low_and_out_of_stock_for_that_sku_only(store):
    fire(store, "inventory.threshold_reached", {"sku": "A", "available": 1, "kind": "low_stock"})
    fire(store, "inventory.threshold_reached", {"sku": "B", "available": 1, "kind": "low_stock"})
    fire(store, "inventory.threshold_cleared", {"sku": "A", "available": 50})
    assert only(store, subject="sku:A").status == "resolved"
    assert only(store, subject="sku:A").resolved_by == "system:inventory.threshold_cleared"
    assert only(store, subject="sku:B").status == "open"


def test_forecast_cleared_resolves_a_forecast_alert_but_not_one_the_threshold_raised(store):
    fire(store, "inventory.forecast_low", {"sku": "A", "days_of_cover": 2.5, "lead_time_days": 7})
    fire(store, "inventory.forecast_low", {"sku": "B", "days_of_cover": 2.5, "lead_time_days": 7})
    fire(
        store,
        "inventory.threshold_reached",
        {"sku": "B", "available": 1, "threshold": 5, "kind": "low_stock"},
    )
    fire(store, "inventory.forecast_cleared", {"sku": "A"})
    fire(store, "inventory.forecast_cleared", {"sku": "B"})
    assert only(store, subject="sku:A").status == "resolved"
    assert only(store, subject="sku:B").status == "open"


def test_inventory_event_without_a_sku_raises_nothing(store):
    fire(store, "inventory.threshold_reached", {"available": 0})
    assert not Alert.all_stores.filter(store=store).exists()


# -------------------------------------------------------------------------------- payments

RETRY = {"attempt": 3, "max_attempts": 6, "next_delay_seconds": 8, "error": "HTTP 503"}


def test_payment_retrying_opens_one_alert_per_order_and_bumps_on_each_retry(store):
    order_id = uuid.uuid4()
    fire(store, "payment.retrying", {**RETRY, "attempt": 2}, order_id=order_id)
    fire(store, "payment.retrying", RETRY, order_id=order_id)
    alert = only(store, kind="payment_retrying")
    assert (alert.subject, alert.order_id, alert.count) == (f"order:{order_id}", order_id, 2)
    assert alert.message == "Payment retrying (attempt 3 of 6)"
    assert alert.data["error"] == "HTTP 503"


def test_payment_retrying_with_no_data_degrades_gracefully(store):
    order_id = uuid.uuid4()
    fire(store, "payment.retrying", {}, order_id=order_id)
    assert only(store, kind="payment_retrying").message == "Payment retrying"


def test_payment_processed_resolves_payment_retrying_for_that_order(store):
    order_id, other = uuid.uuid4(), uuid.uuid4()
    fire(store, "payment.retrying", RETRY, order_id=order_id)
    fire(store, "payment.retrying", RETRY, order_id=other)
    fire(store, "payment.processed", {"amount": "10.00"}, order_id=order_id)
    assert only(store, subject=f"order:{order_id}").status == "resolved"
    assert only(store, subject=f"order:{other}").status == "open"


def test_payment_failed_opens_critical_alert_and_resolves_retrying(store):
    order_id = uuid.uuid4()
    fire(store, "payment.retrying", RETRY, order_id=order_id)
    fire(store, "payment.failed", {"error": "card_declined", "decline_code": "insufficient_funds"},
         order_id=order_id)  # fmt: skip
    failed = only(store, kind="payment_failed")
    assert (failed.severity, failed.subject) == ("critical", f"order:{order_id}")
    assert failed.message == "Payment failed: insufficient_funds"
    assert only(store, kind="payment_retrying").status == "resolved"


# ---------------------------------------------------------------------------------- orders


def test_fraud_review_opens_an_alert_for_the_order(store):
    order_id = uuid.uuid4()
    fire(
        store, "order.fraud_review", {"from": "pending", "to": "fraud_review", "score": 65}, order_id=order_id
    )
    alert = only(store, kind="fraud_review")
    assert (alert.subject, alert.message) == (
        f"order:{order_id}",
        "Order held for fraud review (risk score 65)",
    )


@pytest.mark.parametrize("topic", ["order.payment_processing", "order.rejected", "order.cancelled"])
def test_leaving_fraud_review_resolves_its_alert(store, topic):
    order_id = uuid.uuid4()
    fire(store, "order.fraud_review", {}, order_id=order_id)
    fire(store, topic, {"from": "fraud_review"}, order_id=order_id)
    assert only(store, kind="fraud_review").status == "resolved"


def test_order_events_for_another_order_leave_the_review_open(store):
    order_id = uuid.uuid4()
    fire(store, "order.fraud_review", {}, order_id=order_id)
    fire(store, "order.payment_processing", {}, order_id=uuid.uuid4())
    assert only(store, kind="fraud_review").status == "open"


# --------------------------------------------------------------------------------- gateway


def test_gateway_down_opens_a_critical_alert_and_gateway_up_resolves_it(store):
    fire(store, "gateway.down", {"error": "5 failures in a row"})
    fire(store, "gateway.down", {})
    alert = only(store, kind="gateway_down")
    assert (alert.subject, alert.severity, alert.count) == ("gateway", "critical", 2)
    fire(store, "gateway.up", {})
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_gateway_up_handled_before_the_down_it_answers_leaves_no_open_alert(store):
    """Both published in one batch, their handlers race in two worker processes."""
    with use_store(store), transaction.atomic():
        down = write_event("gateway.down", store=store, subject_type="gateway", subject_id="gateway", data={})
        up = write_event("gateway.up", store=store, subject_type="gateway", subject_id="gateway", data={})
    assert run_handler_once(up.pk, "alerts.receivers.gateway_up") is True
    assert run_handler_once(down.pk, "alerts.receivers.gateway_down") is True
    assert not Alert.all_stores.filter(store=store, kind="gateway_down").exclude(status="resolved").exists()
    # a later outage still opens one
    fire(store, "gateway.down", {}, subject_type="gateway", subject_id="gateway")
    assert only(store, kind="gateway_down").status == "open"


# ------------------------------------------------------------------------------- shipments


@pytest.mark.parametrize("topic", ["shipment.in_transit", "shipment.delivered", "shipment.returned"])
def test_shipment_exception_opens_delivery_exception_and_movement_resolves_it(store, topic):
    fire(store, "shipment.exception", {"tracking_number": "TRK123", "carrier": "dhl"})
    alert = only(store, kind="delivery_exception")
    assert (alert.subject, alert.message) == ("shipment:TRK123", "Delivery exception: DHL TRK123")
    fire(store, topic, {"tracking_number": "TRK999"})  # another parcel: unaffected
    alert.refresh_from_db()
    assert alert.status == "open"
    fire(store, topic, {"tracking_number": "TRK123"})
    alert.refresh_from_db()
    assert alert.status == "resolved"


# ----------------------------------------------------------------------------- event path


def test_a_redelivered_event_does_not_bump_twice(store):
    event = fire(store, "gateway.down", {})
    assert run_handler_once(event.pk, "alerts.receivers.gateway_down") is False
    assert only(store, kind="gateway_down").count == 1


def test_every_alert_event_has_its_handler_registered_on_the_default_queue():
    topics = [
        "inventory.threshold_reached", "inventory.forecast_low", "inventory.threshold_cleared",
        "inventory.forecast_cleared",
        "payment.retrying", "payment.processed", "payment.failed", "order.fraud_review",
        "order.payment_processing", "order.rejected", "order.cancelled", "gateway.down", "gateway.up",
        "shipment.exception", "shipment.in_transit", "shipment.delivered", "shipment.returned",
    ]  # fmt: skip
    for topic in topics:
        mine = [h for h in handlers_for(topic) if h.name.startswith("alerts.receivers.")]
        names = {h.name for h in mine} - {"alerts.receivers.fan_out_to_webhooks"}
        assert len(names) == 1, topic
        assert all(h.queue == "default" and h.atomic for h in mine)


def test_alerts_are_isolated_per_store(store, other_store):
    fire(store, "gateway.down", {})
    fire(other_store, "gateway.up", {})
    assert only(store, kind="gateway_down").status == "open"
