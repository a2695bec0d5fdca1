"""Stock services: every change writes its ledger row, reservations are all-or-none, order-driven
moves are idempotent, thresholds are reported once per crossing."""

import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from inventory import selectors, services
from inventory.models import Product, StockLevel, StockMovement
from orderflow.core.errors import Conflict, InsufficientStock, NotFound, ValidationFailed
from tests.factories import make_product
from tests.inventory.conftest import events, topics

pytestmark = pytest.mark.django_db


def level(product) -> StockLevel:
    return StockLevel.all_stores.get(product=product)


# ------------------------------------------------------------------------------ catalogue


def test_create_product_writes_level_and_initial_restock_row(store):
    p = services.create_product(
        store=store,
        sku="MUG-1",
        name="Mug",
        price="9.50",
        initial_stock=40,
        low_stock_threshold=5,
        actor="ops",
    )
    assert p.price == Decimal("9.50") and p.currency == store.currency
    lv = level(p)
    assert (lv.on_hand, lv.reserved, lv.low_stock_threshold) == (40, 0, 5)
    rows = list(
        StockMovement.all_stores.filter(product=p).values_list("kind", "quantity", "on_hand_delta", "actor")
    )
    assert rows == [("restock", 40, 40, "ops")]
    assert topics(store) == ["product.created"]


def test_create_product_with_no_stock_writes_no_ledger_row_and_reports_it_low(store):
    p = services.create_product(store=store, sku="EMPTY", name="Empty", price="1.00")
    assert not StockMovement.all_stores.filter(product=p).exists()
    [ev] = events(store, "inventory.threshold_reached")
    assert ev.data["sku"] == "EMPTY" and ev.data["kind"] == "out_of_stock"


def test_duplicate_sku_is_409_sku_exists_and_changes_nothing(store):
    services.create_product(store=store, sku="A", name="A", price="1.00", initial_stock=3)
    with pytest.raises(Conflict) as exc:
        services.create_product(store=store, sku="A", name="Again", price="2.00", initial_stock=3)
    assert exc.value.code == "sku_exists" and exc.value.status == 409
    assert Product.all_stores.filter(store=store).count() == 1
    assert StockMovement.all_stores.filter(store=store).count() == 1


def test_same_sku_in_two_stores_is_fine(store, other_store):
    services.create_product(store=store, sku="A", name="A", price="1.00")
    services.create_product(store=other_store, sku="A", name="A", price="1.00")
    assert Product.all_stores.filter(sku="A").count() == 2


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"sku": ""}, "sku"),
        ({"sku": "has space"}, "sku"),
        ({"price": "-1"}, "price"),
        ({"price": "1.234"}, "price"),
        ({"price": "abc"}, "price"),
        ({"currency": "eur"}, "currency"),
        ({"initial_stock": -1}, "initial_stock"),
        ({"low_stock_threshold": -1}, "low_stock_threshold"),
        ({"lead_time_days": -2}, "lead_time_days"),
        ({"name": " "}, "name"),
    ],
)
def test_create_product_rejects_bad_values(store, kw, field):
    args = {"store": store, "sku": "OK-1", "name": "Ok", "price": "1.00", **kw}
    with pytest.raises(ValidationFailed) as exc:
        services.create_product(**args)
    assert field in exc.value.fields
    assert not Product.all_stores.filter(store=store).exists()


def test_update_product_changes_allowed_fields_and_refuses_stock(store):
    make_product(store, "P1", stock=20, threshold=5)
    p = services.update_product(
        store=store, sku="P1", actor="ops", name="New", price="12.30", active=False, low_stock_threshold=25
    )
    assert (p.name, p.price, p.active, p.stock.low_stock_threshold) == ("New", Decimal("12.30"), False, 25)
    # the threshold moved above available: that is a crossing
    assert [e.data["sku"] for e in events(store, "inventory.threshold_reached")] == ["P1"]
    with pytest.raises(ValidationFailed) as exc:
        services.update_product(store=store, sku="P1", actor="ops", on_hand=999)
    assert "on_hand" in exc.value.fields
    assert level(p).on_hand == 20


def test_update_unknown_sku_is_404(store):
    with pytest.raises(NotFound) as exc:
        services.update_product(store=store, sku="NOPE", actor="ops", name="x")
    assert exc.value.code == "product_not_found"


# --------------------------------------------------------------------------- reservations


def test_reserve_all_lines_writes_one_reserve_row_each(store):
    a, b = make_product(store, "A", stock=5), make_product(store, "B", stock=5)
    order_id = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(b.pk, 2), (a.pk, 3)], order_id=order_id)
    assert (level(a).reserved, level(b).reserved) == (3, 2)
    assert sorted(
        StockMovement.all_stores.filter(order_id=order_id).values_list(
            "kind", "product__sku", "reserved_delta"
        )
    ) == [("reserve", "A", 3), ("reserve", "B", 2)]
    assert topics(store, "inventory.") == []  # the hot path emits nothing of its own


def test_reserve_is_all_or_none_and_names_every_short_sku(store):
    a, b, c = (
        make_product(store, "A", stock=1),
        make_product(store, "B", stock=5),
        make_product(store, "C", stock=0),
    )
    with pytest.raises(InsufficientStock) as exc, transaction.atomic():
        services.reserve_stock(store=store, lines=[(a.pk, 2), (b.pk, 1), (c.pk, 1)], order_id=uuid.uuid4())
    err = exc.value
    assert err.code == "insufficient_stock" and err.status == 409
    assert err.extra["skus"] == ["A", "C"]
    assert err.fields == {
        "items[0].quantity": ["only 1 available"],
        "items[2].quantity": ["only 0 available"],
    }
    assert [level(p).reserved for p in (a, b, c)] == [0, 0, 0]
    assert not StockMovement.all_stores.filter(kind="reserve").exists()


def test_reserve_sums_repeated_product_lines(store):
    a = make_product(store, "A", stock=3)
    with pytest.raises(InsufficientStock), transaction.atomic():
        services.reserve_stock(store=store, lines=[(a.pk, 2), (a.pk, 2)], order_id=uuid.uuid4())
    services.reserve_stock(store=store, lines=[(a.pk, 1), (a.pk, 2)], order_id=uuid.uuid4())
    assert level(a).reserved == 3


def test_reserve_refuses_another_stores_product(store, other_store):
    theirs = make_product(other_store, "T", stock=10)
    with pytest.raises(InsufficientStock), transaction.atomic():
        services.reserve_stock(store=store, lines=[(theirs.pk, 1)], order_id=uuid.uuid4())
    assert level(theirs).reserved == 0


def test_release_gives_back_what_is_still_reserved_once(store):
    a = make_product(store, "A", stock=10, threshold=2)
    order_id = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(a.pk, 4)], order_id=order_id)
    assert services.release_stock(store=store, order_id=order_id, reason="cancelled") == 4
    assert services.release_stock(store=store, order_id=order_id) == 0
    assert level(a).reserved == 0
    [ev] = events(store, "inventory.updated")
    assert ev.data["reason"] == "release" and ev.data["levels"][0]["available"] == 10
    assert str(ev.order_id) == str(order_id)


def test_commit_drops_on_hand_and_reserved_once_and_reports_crossing_at_once(store):
    a = make_product(store, "A", stock=10, threshold=5)
    order_id = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(a.pk, 6)], order_id=order_id)
    assert services.commit_stock(store=store, order_id=order_id) == 6
    assert services.commit_stock(store=store, order_id=order_id) == 0
    lv = level(a)
    assert (lv.on_hand, lv.reserved) == (4, 0)
    assert services.release_stock(store=store, order_id=order_id) == 0  # nothing left reserved
    [updated] = events(store, "inventory.updated")
    assert updated.data["levels"] == [
        {"sku": "A", "on_hand": 4, "reserved": 0, "available": 4, "low_stock_threshold": 5, "is_low": True}
    ]
    [reached] = events(store, "inventory.threshold_reached")
    assert (
        reached.data["sku"] == "A" and reached.data["kind"] == "low_stock" and reached.data["threshold"] == 5
    )


def test_return_puts_committed_stock_back_once(store):
    a = make_product(store, "A", stock=10, threshold=0)
    order_id = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(a.pk, 3)], order_id=order_id)
    services.commit_stock(store=store, order_id=order_id)
    assert services.return_stock(store=store, order_id=order_id) == 3
    assert services.return_stock(store=store, order_id=order_id) == 0
    assert level(a).on_hand == 10
    row = StockMovement.all_stores.filter(order_id=order_id, kind="restock").get()
    assert row.on_hand_delta == 3


def test_a_return_above_the_threshold_clears_the_crossing_the_commit_reported(store):
    a = make_product(store, "A", stock=10, threshold=5)
    order_id = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(a.pk, 6)], order_id=order_id)
    services.commit_stock(store=store, order_id=order_id)
    assert level(a).threshold_reached_at is not None
    services.return_stock(store=store, order_id=order_id)
    assert level(a).threshold_reached_at is None
    [cleared] = events(store, "inventory.threshold_cleared")
    assert (cleared.data["sku"], cleared.data["available"]) == ("A", 10)


def test_a_commit_that_crosses_nothing_writes_no_threshold_flag(store):
    """The level is read under its row lock, so its flag is current: no UPDATE that flips nothing."""
    a = make_product(store, "A", stock=100, threshold=5)
    b = make_product(store, "B", stock=100, threshold=5)
    order_id = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(a.pk, 2), (b.pk, 1)], order_id=order_id)
    with CaptureQueriesContext(connection) as ctx:
        assert services.commit_stock(store=store, order_id=order_id) == 3
    sql = [q["sql"] for q in ctx.captured_queries]
    assert not [q for q in sql if "threshold_reached_at" in q and q.startswith("UPDATE")]
    assert sum(q.startswith("SELECT") for q in sql) == 2  # the locked levels, the order's ledger sums
    assert (level(a).on_hand, level(b).on_hand) == (98, 99)
    assert events(store, "inventory.threshold_reached") == []


def test_order_calls_for_unknown_order_do_nothing(store):
    make_product(store, "A", stock=1)
    oid = uuid.uuid4()
    assert services.release_stock(store=store, order_id=oid) == 0
    assert services.commit_stock(store=store, order_id=oid) == 0
    assert services.return_stock(store=store, order_id=oid) == 0


# --------------------------------------------------------------------------- restock/adjust


def test_restock_adds_and_clears_a_crossing(store):
    a = make_product(store, "A", stock=2, threshold=5)
    services.check_inventory(store=store)
    lv = services.restock(store=store, sku="A", quantity=10, note="PO-7", actor="ops")
    assert (lv.on_hand, level(a).threshold_reached_at) == (12, None)
    assert topics(store, "inventory.") == [
        "inventory.threshold_reached",
        "inventory.updated",
        "inventory.threshold_cleared",
    ]
    row = StockMovement.all_stores.filter(product=a).first()
    assert (row.kind, row.quantity, row.note, row.actor) == ("restock", 10, "PO-7", "ops")


def test_adjust_never_goes_below_reserved(store):
    a = make_product(store, "A", stock=10)
    services.reserve_stock(store=store, lines=[(a.pk, 7)], order_id=uuid.uuid4())
    with pytest.raises(Conflict) as exc:
        services.adjust(store=store, sku="A", delta=-4, reason="broken", actor="ops")
    assert exc.value.code == "below_reserved" and exc.value.status == 409
    assert level(a).on_hand == 10
    lv = services.adjust(store=store, sku="A", delta=-3, reason="broken", actor="ops")
    assert (lv.on_hand, lv.reserved) == (7, 7)
    assert StockMovement.all_stores.filter(product=a).first().quantity == -3


@pytest.mark.parametrize("bad", [0, -1, 1_000_001, 1.5, "3", True, None])
def test_restock_refuses_bad_quantities(store, bad):
    a = make_product(store, "A", stock=1)
    with pytest.raises(ValidationFailed):
        services.restock(store=store, sku="A", quantity=bad, actor="ops")
    assert level(a).on_hand == 1


@pytest.mark.parametrize("bad", [0, 1_000_001, -1_000_001, 2.0, "1", False])
def test_adjust_refuses_bad_deltas(store, bad):
    make_product(store, "A", stock=1)
    with pytest.raises(ValidationFailed):
        services.adjust(store=store, sku="A", delta=bad, reason="x", actor="ops")


def test_restock_unknown_or_other_store_sku_is_404(store, other_store):
    make_product(other_store, "THEIRS", stock=1)
    for sku in ("NOPE", "THEIRS"):
        with pytest.raises(NotFound):
            services.restock(store=store, sku=sku, quantity=1, actor="ops")


# ------------------------------------------------------------------------------ selectors


def test_catalogue_for_skus_is_one_query_in_its_own_store(store, other_store, django_assert_num_queries):
    make_product(store, "A", stock=3, price="2.50")
    make_product(store, "B", stock=4)
    make_product(other_store, "THEIRS", stock=1)
    with django_assert_num_queries(1):
        found = selectors.catalogue_for_skus(store, ["A", "B", "A", "MISSING", "THEIRS"])
    assert set(found) == {"A", "B"}
    a = found["A"]
    assert (a.sku, a.price, a.currency, a.active) == ("A", Decimal("2.50"), store.currency, True)
    assert a.pk == Product.all_stores.get(store=store, sku="A").pk


def test_stock_levels_report_days_of_cover_from_recent_commits(store):
    a = make_product(store, "A", stock=100, threshold=5)
    make_product(store, "B", stock=100, threshold=5)
    oid = uuid.uuid4()
    services.reserve_stock(store=store, lines=[(a.pk, 28)], order_id=oid)
    services.commit_stock(store=store, order_id=oid)
    levels = {lv.product.sku: lv for lv in selectors.stock_levels(store)}
    # 28 sold in 14 days = 2/day; 72 available → 36 days
    assert levels["A"].days_of_cover == pytest.approx(36.0)
    assert levels["B"].days_of_cover is None


def test_ledger_mismatches_finds_a_level_changed_behind_the_ledger(store):
    a = make_product(store, "A", stock=3)
    StockLevel.all_stores.filter(product=a).update(on_hand=5)
    assert selectors.ledger_mismatches(store) == [
        {
            "store": store.slug,
            "sku": "A",
            "on_hand": 5,
            "reserved": 0,
            "ledger_on_hand": 3,
            "ledger_reserved": 0,
        }
    ]
    StockLevel.all_stores.filter(product=a).update(on_hand=3)
