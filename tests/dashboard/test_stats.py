from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert
from dashboard import selectors
from orders.models import IdempotencyRecord
from tests.dashboard.helpers import make_order
from tests.factories import make_product

pytestmark = pytest.mark.django_db


def _seed(store):
    """A fixed shape: 2 delivered/shipped, 1 paid, 1 failed, 1 retrying, 1 pending, 1 old paid."""
    now = timezone.now()
    t = now - timedelta(minutes=30)
    # accept→paid 60 s and 120 s and 180 s; paid→shipped 600 s and 1200 s
    make_order(
        store, status="delivered", payment_status="succeeded", total="10.00", created_at=t,
        paid_at=t + timedelta(seconds=60), shipped_at=t + timedelta(seconds=660),
    )  # fmt: skip
    make_order(
        store, status="shipped", payment_status="succeeded", total="20.00", created_at=t,
        paid_at=t + timedelta(seconds=120), shipped_at=t + timedelta(seconds=1320),
    )  # fmt: skip
    make_order(
        store, status="paid", payment_status="succeeded", total="30.00", created_at=t,
        paid_at=t + timedelta(seconds=180),
    )  # fmt: skip
    make_order(store, status="payment_failed", payment_status="failed", total="40.00", created_at=t)
    make_order(store, status="payment_processing", payment_status="retrying", total="50.00", created_at=t)
    make_order(store, status="pending", total="60.00")
    # Older than an hour but inside 7 days (and maybe before today): counted in the week only.
    old = now - timedelta(days=3)
    make_order(
        store, status="paid", payment_status="succeeded", total="5.00", created_at=old,
        paid_at=old + timedelta(seconds=240),
    )  # fmt: skip
    # Outside the week: only in orders_by_status.
    make_order(
        store,
        status="cancelled",
        payment_status="refunded",
        total="99.00",
        created_at=now - timedelta(days=9),
    )
    return now


def test_stats_count_orders_by_status_with_every_status_present(store):
    _seed(store)
    by_status = selectors.stats(store)["orders_by_status"]
    assert by_status["delivered"] == 1
    assert by_status["paid"] == 2
    assert by_status["cancelled"] == 1
    assert by_status["fraud_review"] == 0
    assert sum(by_status.values()) == 8


def test_stats_orders_and_revenue_per_window(store):
    now = _seed(store)
    s = selectors.stats(store)
    assert s["orders"]["last_hour"] == 6
    assert s["orders"]["last_7_days"] == 7
    # revenue = captured payments only (failed, retrying, pending and refunded are not revenue)
    assert s["revenue"]["last_hour"] == "60.00"
    assert s["revenue"]["last_7_days"] == "65.00"
    # today: the order placed now, the five placed 30 minutes ago unless that was before midnight
    # (a run in the first half hour of the day), the old one only if three days ago was today
    today_start = selectors.start_of_today(now)
    expected_today = 1 + sum(
        n
        for n, created in ((5, now - timedelta(minutes=30)), (1, now - timedelta(days=3)))
        if created >= today_start
    )
    assert s["orders"]["today"] == expected_today


def test_stats_rates_and_medians(store):
    _seed(store)
    s = selectors.stats(store)
    # 4 succeeded vs 1 failed in the week (retrying/pending are not final)
    assert s["payment_success_rate"] == 0.8
    # 4 paid in the week, 2 of them shipped
    assert s["fulfillment_rate"] == 0.5
    # accept→paid: 60, 120, 180, 240 → 150; paid→shipped: 600, 1200 → 900
    assert s["median_accept_to_paid_seconds"] == pytest.approx(150.0)
    assert s["median_paid_to_shipped_seconds"] == pytest.approx(900.0)
    assert s["orders_retrying_payment"] == 1


def test_stats_of_an_empty_store_are_zero_and_null(store):
    s = selectors.stats(store)
    assert s["orders"] == {"today": 0, "last_hour": 0, "last_7_days": 0}
    assert s["revenue"]["today"] == "0.00"
    assert s["payment_success_rate"] is None
    assert s["median_accept_to_paid_seconds"] is None
    assert s["recent_orders"] == []


def test_stats_list_low_stock_skus_only(store):
    make_product(store, "LOW", stock=3, threshold=5)
    make_product(store, "EDGE", stock=5, threshold=5)
    make_product(store, "PLENTY", stock=50, threshold=5)
    skus = [row["sku"] for row in selectors.stats(store)["low_stock_skus"]]
    assert skus == ["LOW", "EDGE"]


def test_stats_recent_orders_newest_first_at_most_ten(store):
    base = timezone.now() - timedelta(minutes=20)
    orders = [make_order(store, created_at=base + timedelta(minutes=i)) for i in range(12)]
    recent = selectors.stats(store)["recent_orders"]
    assert len(recent) == 10
    assert recent[0]["id"] == str(orders[-1].pk)
    assert recent[0]["total"] == "10.00"


def test_stats_count_open_alerts_by_severity_and_replays_today(store):
    now = timezone.now()
    for kind, severity, status in [
        ("low_stock", "warning", "open"),
        ("gateway_down", "critical", "acknowledged"),
        ("payment_failed", "warning", "resolved"),
    ]:
        Alert.all_stores.create(
            store=store, kind=kind, severity=severity, status=status, subject=f"x:{kind}",
            message=kind, first_seen_at=now, last_seen_at=now,
        )  # fmt: skip
    for key, replays, last in [
        ("k1", 2, now),
        ("k2", 1, now),
        ("k3", 0, None),
        ("old", 5, now - timedelta(days=2)),
    ]:
        IdempotencyRecord.all_stores.create(
            store=store, key=key, fingerprint="f", replays=replays, last_replayed_at=last
        )
    s = selectors.stats(store)
    assert s["open_alerts_by_severity"] == {"info": 0, "warning": 1, "critical": 1}
    assert s["idempotent_replays_today"] == 3


def test_stats_never_count_another_stores_orders(store, other_store):
    make_order(other_store, status="paid", payment_status="succeeded", paid_at=timezone.now())
    make_product(other_store, "LOW-B", stock=1, threshold=5)
    s = selectors.stats(store)
    assert sum(s["orders_by_status"].values()) == 0
    assert s["low_stock_skus"] == []
    assert s["recent_orders"] == []
