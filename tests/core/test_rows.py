"""rows.update_row changes one row, only when its conditions hold, and writes values as the ORM
would (JSON, foreign keys given as instances, expressions)."""

from decimal import Decimal

from django.db.models import F

from orderflow.core import rows
from orders.models import Order


def test_update_row_changes_one_row_only_when_its_conditions_hold(store, other_store):
    order, bystander = (
        Order.all_stores.create(store=store, number=n, customer_email="c@x.io", customer_name="C",
                                currency="EUR", subtotal=Decimal("2"), total=Decimal("2"))
        for n in (9, 10)
    )  # fmt: skip
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
    untouched = Order.all_stores.get(pk=bystander.pk)
    assert (untouched.status, untouched.store_id, untouched.payment_attempts) == ("pending", store.pk, 0)
