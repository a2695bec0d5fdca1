"""rows.insert writes what Model.save() would: defaults, auto_now_add, JSON, decimals; auto primary
keys come back onto the instances, in order."""

import uuid
from decimal import Decimal

from orderflow.core import rows
from orderflow.core.events import Event
from orders.models import Order, OrderItem


def test_insert_matches_what_save_stores(store):
    saved = Order(store=store, number=1, customer_email="a@x.io", customer_name="A", currency="EUR",
                  subtotal=Decimal("1.50"), total=Decimal("1.50"), metadata={"k": [1]})  # fmt: skip
    saved.save(force_insert=True)
    fast = Order(store=store, number=2, customer_email="a@x.io", customer_name="A", currency="EUR",
                 subtotal=Decimal("1.50"), total=Decimal("1.50"), metadata={"k": [1]})  # fmt: skip
    rows.insert([fast])
    assert not fast._state.adding and fast.created_at is not None
    a, b = (Order.all_stores.values().get(pk=o.pk) for o in (saved, fast))
    differ = {k for k in a if a[k] != b[k]}
    assert differ == {"id", "number", "tracking_token", "created_at", "updated_at"}
    assert b["metadata"] == {"k": [1]} and b["total"] == Decimal("1.50") and b["status"] == "pending"


def test_insert_sets_auto_keys_in_row_order(store):
    events = [Event(store=store, topic=f"t.{i}", data={"i": i}) for i in range(5)]
    rows.insert(events)
    stored = {e.pk: (e.topic, e.data["i"]) for e in Event.all_stores.filter(store=store)}
    assert [stored[e.pk] for e in events] == [(f"t.{i}", i) for i in range(5)]
    order = Order(store=store, number=3, customer_email="b@x.io", customer_name="B", currency="EUR",
                  subtotal=Decimal("2"), total=Decimal("2"))  # fmt: skip
    rows.insert([order])
    lines = [OrderItem(store=store, order=order, product_id=i, sku=f"S{i}", name="n", unit_price=Decimal("1"),
                       quantity=1, line_total=Decimal("1")) for i in range(3)]  # fmt: skip
    rows.insert(lines)
    assert sorted(OrderItem.all_stores.filter(order=order).values_list("pk", "sku")) == [
        (line.pk, line.sku) for line in lines
    ]
    assert isinstance(order.pk, uuid.UUID)


def test_update_row_changes_one_row_only_when_its_conditions_hold(store, other_store):
    from django.db.models import F

    order = Order(store=store, number=9, customer_email="c@x.io", customer_name="C", currency="EUR",
                  subtotal=Decimal("2"), total=Decimal("2"))  # fmt: skip
    rows.insert([order])
    assert rows.update_row(Order, order.pk, {"status": "cancelled"}, where={"status": "paid"}) == 0
    assert Order.all_stores.get(pk=order.pk).status == "pending"
    assert rows.update_row(Order, order.pk, {"status": "cancelled", "risk_rules": [{"r": 1}]},
                           where={"status": "pending"}) == 1  # fmt: skip
    fresh = Order.all_stores.get(pk=order.pk)
    assert (fresh.status, fresh.risk_rules) == ("cancelled", [{"r": 1}])
    assert rows.update_row(Order, order.pk, {"store": other_store}) == 1  # a model for a foreign key
    assert rows.update_row(Order, order.pk, {"payment_attempts": F("payment_attempts") + 2}) == 1
    fresh = Order.all_stores.get(pk=order.pk)
    assert (fresh.store_id, fresh.payment_attempts) == (other_store.pk, 2)
