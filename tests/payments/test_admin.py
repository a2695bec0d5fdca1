"""The payments admin renders: list with filters and search, a payment with its attempts inline."""

import pytest

from payments import services
from tests.factories import make_product, make_user
from tests.payments.helpers import create_order

pytestmark = pytest.mark.django_db


def test_payment_admin_lists_searches_and_shows_attempts(client, store, gw):
    product = make_product(store, "TEE", price="20.00", stock=10)
    order = create_order(store, (product, 1))
    services.screen_order(store=store, order_id=order.pk)
    payment = order.payment
    services.attempt_charge(store=store, payment_id=payment.pk)
    client.force_login(make_user(superuser=True))

    listing = client.get("/admin/payments/payment/", {"status": "succeeded", "q": str(order.pk)})
    assert listing.status_code == 200 and str(payment.pk) in listing.content.decode()
    page = client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Payment attempts" in body and "succeeded" in body


def test_operators_see_only_their_stores_payments(client, store, other_store, gw):
    theirs = make_product(other_store, "TEE", price="20.00", stock=10)
    order = create_order(other_store, (theirs, 1))
    services.screen_order(store=other_store, order_id=order.pk)
    mine = create_order(store, (make_product(store, "TEE", price="20.00", stock=10), 1))
    services.screen_order(store=store, order_id=mine.pk)
    operator = make_user(store=store)  # staff, operator of store A only (no Django model perms)
    client.force_login(operator)
    listing = client.get("/admin/payments/payment/")
    assert listing.status_code == 200
    body = listing.content.decode()
    assert str(mine.payment.pk) in body and str(order.payment.pk) not in body
