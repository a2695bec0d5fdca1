"""The beat watchdog: once per crossing, reset by restock, forecast by days of cover."""

import uuid

import pytest
from django_celery_beat.models import PeriodicTask

from inventory import services
from inventory.models import StockLevel
from inventory.tasks import check_inventory
from tests.factories import make_product
from tests.inventory.conftest import events

pytestmark = pytest.mark.django_db


def test_periodic_task_exists_after_migrate_every_60_seconds():
    task = PeriodicTask.objects.get(task="inventory.check_inventory")
    assert task.enabled and task.interval.every == 60 and task.interval.period == "seconds"


def test_sku_dropping_under_threshold_is_reported_once_across_three_runs(store):
    p = make_product(store, "A", stock=10, threshold=3)
    check_inventory.apply()
    assert events(store, "inventory.threshold_reached") == []
    services.reserve_stock(store=store, lines=[(p.pk, 8)], order_id=uuid.uuid4())  # available 2
    for _ in range(3):
        check_inventory.apply()
    [ev] = events(store, "inventory.threshold_reached")
    assert ev.data == {
        "sku": "A",
        "available": 2,
        "on_hand": 10,
        "reserved": 8,
        "threshold": 3,
        "kind": "low_stock",
        "name": p.name,
    }
    assert ev.subject_type == "product" and ev.subject_id == str(p.pk)


def test_restock_above_threshold_resets_the_crossing(store):
    p = make_product(store, "A", stock=2, threshold=3)
    services.check_inventory()
    services.restock(store=store, sku="A", quantity=10, actor="ops")
    assert StockLevel.all_stores.get(product=p).threshold_reached_at is None
    [cleared] = events(store, "inventory.threshold_cleared")
    assert cleared.data["sku"] == "A" and cleared.data["available"] == 12
    services.check_inventory()
    assert len(events(store, "inventory.threshold_reached")) == 1  # not low any more
    services.adjust(store=store, sku="A", delta=-12, reason="flood", actor="ops")
    services.check_inventory()
    reached = events(store, "inventory.threshold_reached")
    assert [e.data["kind"] for e in reached] == ["low_stock", "out_of_stock"]


def test_restock_that_stays_under_threshold_does_not_reset(store):
    make_product(store, "A", stock=1, threshold=5)
    services.check_inventory()
    services.restock(store=store, sku="A", quantity=2, actor="ops")
    services.check_inventory()
    assert len(events(store, "inventory.threshold_reached")) == 1
    assert events(store, "inventory.threshold_cleared") == []


def test_released_reservation_clears_the_crossing_via_the_watchdog_or_release(store):
    p = make_product(store, "A", stock=10, threshold=3)
    oid = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(p.pk, 9)], order_id=oid)
    services.check_inventory()
    services.release_stock(store=store, order_id=oid)
    services.check_inventory()
    assert len(events(store, "inventory.threshold_reached")) == 1
    assert len(events(store, "inventory.threshold_cleared")) == 1


def test_watchdog_can_be_limited_to_one_store(store, other_store):
    make_product(store, "A", stock=0, threshold=3)
    make_product(other_store, "B", stock=0, threshold=3)
    check_inventory.apply(args=[store.pk])
    assert len(events(store, "inventory.threshold_reached")) == 1
    assert events(other_store, "inventory.threshold_reached") == []


def test_forecast_low_when_days_of_cover_fall_under_lead_time_once(store):
    p = make_product(store, "A", stock=100, threshold=1)
    services.update_product(store=store, sku="A", actor="ops", lead_time_days=10)
    oid = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(p.pk, 70)], order_id=oid)
    services.commit_stock(store=store, order_id=oid)  # 70 sold in 14 days = 5/day, 30 left = 6 days
    for _ in range(3):
        services.check_inventory()
    [ev] = events(store, "inventory.forecast_low")
    assert ev.data["sku"] == "A" and ev.data["days_of_cover"] == 6.0 and ev.data["lead_time_days"] == 10
    assert ev.data["forecast"] is True and ev.data["kind"] == "low_stock"
    services.restock(store=store, sku="A", quantity=100, actor="ops")  # 130 / 5 = 26 days
    services.check_inventory()
    [cleared] = events(store, "inventory.forecast_cleared")
    assert cleared.data["sku"] == "A"
    assert StockLevel.all_stores.get(product=p).forecast_alerted_at is None


def test_no_forecast_without_sales_or_lead_time(store):
    make_product(store, "A", stock=5, threshold=1)
    services.update_product(store=store, sku="A", actor="ops", lead_time_days=30)
    services.check_inventory()
    assert events(store, "inventory.forecast_low") == []
