"""Orders' reconciler sweep: reservations no order should hold (committed for a paid order,
released for one that will never be paid), the unpaid-order window per store, and a sweep never
waiting on an order another transaction holds. Rows are frozen directly; one run of
`core.reconcile` repairs them, a second changes nothing."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from inventory.models import StockMovement
from orderflow.core.reconcile import run_all
from orders.models import Order
from orders.reconciler import LIVE, NEVER_PAID, PAID_OR_LATER
from tests.factories import make_product, make_store
from tests.payments.helpers import create_order, stock
from tests.reconciling import alert, deliver_alerts, empty_queues, frozen, reconciled, sweep

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_queues():
    empty_queues()
    yield
    empty_queues()


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="20.00", stock=10)


def test_the_status_sets_the_sweep_judges_by_are_derived_from_the_transition_table():
    assert LIVE == {"pending", "fraud_review", "payment_processing"}
    assert PAID_OR_LATER == {"paid", "fulfilling", "ready_to_ship", "shipped", "delivered"}
    assert NEVER_PAID == {"payment_failed", "rejected", "cancelled", "expired"}
    assert LIVE | PAID_OR_LATER | NEVER_PAID == set(Order.TRANSITIONS)


# ---------------------------------------------------------------------------- reservations


@pytest.mark.parametrize("status", ["paid", "fulfilling"])
def test_paid_order_still_holding_reserved_stock_gets_it_committed(
    store, product, status, django_capture_on_commit_callbacks
):
    order = frozen(create_order(store, (product, 2)), status=status, seconds=60)
    assert stock(product) == (10, 2)

    assert sweep(django_capture_on_commit_callbacks) == {"stock_committed": 1}

    assert stock(product) == (8, 0)
    commit = StockMovement.all_stores.get(store=store, order_id=order.pk, kind="commit")
    assert (commit.quantity, commit.actor) == (2, "reconciler")
    [data] = reconciled(store, order)
    assert (data["problem"], data["action"], data["units"], data["status"]) == (
        "stock_not_committed",
        "committed",
        2,
        status,
    )
    deliver_alerts(store, order)
    assert (
        alert(store, order, "order_reconciled").message == "Order reconciled: stock not committed (committed)"
    )

    assert sweep(django_capture_on_commit_callbacks) == {}
    assert stock(product) == (8, 0) and len(reconciled(store, order)) == 1


@pytest.mark.parametrize("status", ["payment_failed", "rejected", "cancelled", "expired"])
def test_reservation_of_an_order_that_will_never_be_paid_is_released(
    store, product, status, django_capture_on_commit_callbacks
):
    order = frozen(create_order(store, (product, 3)), status=status, seconds=60)
    live = create_order(store, (product, 2))  # a live order's reservation is its own

    assert sweep(django_capture_on_commit_callbacks) == {"reservation_released": 1}

    assert stock(product) == (10, 2)
    assert StockMovement.all_stores.get(store=store, order_id=order.pk, kind="release").quantity == 3
    [data] = reconciled(store, order)
    assert (data["problem"], data["action"], data["units"]) == ("reservation_leaked", "released", 3)
    assert reconciled(store, live) == []
    deliver_alerts(store, order)
    assert alert(store, order, "order_reconciled").data["problem"] == "reservation_leaked"

    assert sweep(django_capture_on_commit_callbacks) == {}
    assert stock(product) == (10, 2)


def test_a_freshly_closed_order_is_left_to_settle(store, product, django_capture_on_commit_callbacks):
    frozen(create_order(store, (product, 3)), status="cancelled", seconds=1)
    assert sweep(django_capture_on_commit_callbacks) == {}
    assert stock(product) == (10, 3)


# ---------------------------------------------------------------------------------- expiry


def test_the_window_is_per_store_and_zero_means_never(
    store, product, settings, django_capture_on_commit_callbacks
):
    settings.ORDER_EXPIRY_MINUTES = 60  # the platform default
    never = make_store("never-expires", settings={"order_expiry_minutes": 0})
    never_product = make_product(never, "MUG", stock=5)
    default = frozen(create_order(store, (product, 1)), seconds=45 * 60)  # under the 60-minute default
    kept = frozen(create_order(never, (never_product, 1)), seconds=10 * 24 * 3600)
    old = frozen(create_order(store, (product, 1)), seconds=61 * 60)

    sweep(django_capture_on_commit_callbacks)

    statuses = dict(Order.all_stores.values_list("pk", "status"))
    assert (statuses[default.pk], statuses[kept.pk], statuses[old.pk]) == ("pending", "pending", "expired")


# ------------------------------------------------------------------------------ concurrency


@pytest.mark.django_db(transaction=True)
def test_an_order_another_transaction_holds_is_skipped_not_waited_on(store, product):
    order = frozen(create_order(store, (product, 2)), status="cancelled", seconds=60)
    locked, release = threading.Event(), threading.Event()

    def hold():
        with transaction.atomic():
            Order.all_stores.select_for_update().get(pk=order.pk)
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        assert run_all() == {}
        assert stock(product) == (10, 2)
    finally:
        release.set()
        holder.join(10)
    assert run_all() == {"reservation_released": 1}
    assert stock(product) == (10, 0)
