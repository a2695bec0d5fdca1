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
