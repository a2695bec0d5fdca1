"""Concurrent refunds on real PostgreSQL: real threads, each with its own connection, against the
real mock gateway. The payment's row lock serialises them; the gateway's key makes a retried one
land once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderflow.core.errors import DomainError
from payments import refunds
from payments.models import Payment, Refund
from tests.factories import make_product
from tests.inventory.test_concurrency import run_threads
from tests.payments.helpers import paid_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def order(store, gw):
    tee = make_product(store, "TEE", price="20.00", stock=10)
    mug = make_product(store, "MUG", price="5.00", stock=10)
    return paid_order(store, (tee, 2), (mug, 3))  # 55.00 captured


def attempt(store, order, **kw) -> str:
    try:
        refund, created = refunds.create_refund(store=store, order_id=order.pk, actor="race", **kw)
    except DomainError as exc:
        return exc.code
    return f"{refund.status}:{'new' if created else 'replay'}"


def charge_refunds(gw, order) -> list[str]:
    [charge] = gw.ledger(order_id=str(order.pk))
    return [r["amount"] for r in charge["refunds"]]


def test_two_concurrent_refunds_never_exceed_the_capture(store, order, gw):
    results = run_threads(2, lambda i: attempt(store, order, amount=Decimal("30.00")))
    assert sorted(results) == ["refund_exceeds_captured", "succeeded:new"], results
    assert charge_refunds(gw, order) == ["30.00"]
    payment = Payment.all_stores.get(order=order)
    assert (payment.status, payment.refunded_amount) == ("partially_refunded", Decimal("30.00"))


def test_concurrent_line_refunds_never_refund_a_unit_twice(store, order, gw):
    results = run_threads(
        3, lambda i: attempt(store, order, lines=[{"sku": "TEE", "quantity": 2}], restock=True)
    )
    assert sorted(results) == ["succeeded:new", "validation_error", "validation_error"], results
    assert charge_refunds(gw, order) == ["40.00"]


def test_the_same_refund_sent_twice_at_once_refunds_once(store, order, gw):
    results = run_threads(2, lambda i: attempt(store, order, amount=Decimal("10.00"), client_key="twice"))
    assert sorted(results) == ["succeeded:new", "succeeded:replay"], results
    assert Refund.all_stores.count() == 1
    assert charge_refunds(gw, order) == ["10.00"]
    assert Payment.all_stores.get(order=order).refunded_amount == Decimal("10.00")
