"""Orders written straight through the model, with chosen states and clocks (the stats read
columns, so the tests set exactly the columns they assert on)."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from orders.models import Order

_numbers = itertools.count(1)


def make_order(
    store,
    *,
    status: str = "pending",
    payment_status: str = "pending",
    fulfillment_status: str = "unfulfilled",
    total: str = "10.00",
    created_at: datetime | None = None,
    paid_at: datetime | None = None,
    shipped_at: datetime | None = None,
    email: str = "shopper@example.com",
) -> Order:
    order = Order.all_stores.create(
        store=store,
        number=next(_numbers),
        status=status,
        payment_status=payment_status,
        fulfillment_status=fulfillment_status,
        customer_email=email,
        customer_name="Ada Lovelace",
        shipping_line1="1 Test Street",
        shipping_city="Berlin",
        shipping_postal_code="10115",
        shipping_country="DE",
        currency=store.currency,
        subtotal=Decimal(total),
        total=Decimal(total),
        paid_at=paid_at,
        shipped_at=shipped_at,
    )
    if created_at is not None:  # auto_now_add: set the clock after the insert
        Order.all_stores.filter(pk=order.pk).update(created_at=created_at)
        order.created_at = created_at
    return order


def now() -> datetime:
    return timezone.now()


def make_member(store, role: str = "operator", **kw):
    """A user with `role` in `store` (owner / operator / viewer), as the permission policy reads it."""
    from orderflow.core.tenancy import StoreMembership
    from tests.factories import make_user

    user = make_user(**kw)
    StoreMembership.objects.create(store=store, user=user, role=role)
    return user
