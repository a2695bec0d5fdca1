"""Partial refunds (issue #15): by amount and by lines, restock, the sum never above the capture,
the gateway's key per refund, and the full refund of a cancelled order as the refund of the rest.
Through HTTP with a store key and the real mock gateway."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import StockMovement
from inventory.selectors import ledger_mismatches
from orders import services as order_services
from orders.models import Order
from payments import gateway, reconciler, refunds, tasks
from payments.models import Payment, Refund
from tests.factories import make_product
from tests.payments.helpers import create_order, event, paid_order, stock, topics
from tests.payments.test_reconciler import queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def tee(store):
    return make_product(store, "TEE", price="20.00", stock=10)


@pytest.fixture
def mug(store):
    return make_product(store, "MUG", price="5.00", stock=10)


@pytest.fixture
def order(store, tee, mug, gw):
    """55.00 captured: 2 × TEE at 20.00 and 3 × MUG at 5.00; stock committed (TEE 8, MUG 7 on hand)."""
    return paid_order(store, (tee, 2), (mug, 3))


def refund(api, order, body, **headers):
    return api.post(f"/api/v1/orders/{order.pk}/refunds", body, format="json", **headers)


def payment_of(order) -> Payment:
    return Payment.all_stores.get(order=order)


def gateway_refunds(gw, order) -> list[dict]:
    [charge] = gw.ledger(order_id=str(order.pk))
    return charge["refunds"]


# ------------------------------------------------------------------------------ by amount


def test_a_partial_refund_by_amount(api, store, order, gw):
    r = refund(api, order, {"amount": "10.00", "reason": "late delivery"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["status"], body["amount"], body["lines"]) == ("succeeded", "10.00", [])
    assert body["payment_status"] == "partially_refunded" and body["reason"] == "late delivery"
    payment = payment_of(order)
    assert (payment.status, payment.refunded_amount) == ("partially_refunded", Decimal("10.00"))
    assert Order.all_stores.get(pk=order.pk).payment_status == "partially_refunded"
    [booked] = gateway_refunds(gw, order)
    refund_row = Refund.all_stores.get(pk=body["id"])
    assert booked["amount"] == "10.00" and booked["idempotency_key"] == refund_row.idempotency_key
    assert body["gateway_refund_id"] == booked["id"]
    ev = event(store, "payment.partially_refunded", order)
    assert ev.data["amount"] == "10.00" and ev.data["refunded_total"] == "10.00"
    assert ev.data["remaining"] == "45.00" and ev.data["refund"] == body["id"]
    assert "payment.refund_requested" in topics(store, order)


def test_refunds_up_to_the_total_turn_the_payment_refunded(api, store, order, gw, tee, mug):
    assert refund(api, order, {"amount": "15.00"}).status_code == 201
    assert refund(api, order, {"lines": [{"sku": "MUG", "quantity": 3}]}).status_code == 201
    r = refund(api, order, {"amount": "25.00"})
    assert r.status_code == 201 and r.json()["payment_status"] == "refunded"
    payment = payment_of(order)
    assert (payment.status, payment.refunded_amount) == ("refunded", Decimal("55.00"))
    assert Order.all_stores.get(pk=order.pk).payment_status == "refunded"
    assert [t for t in topics(store, order) if t in ("payment.partially_refunded", "payment.refunded")] == [
        "payment.partially_refunded",
        "payment.partially_refunded",
        "payment.refunded",
    ]
    assert [b["amount"] for b in gateway_refunds(gw, order)] == ["15.00", "15.00", "25.00"]
    listing = api.get(f"/api/v1/orders/{order.pk}/refunds").json()
    assert (listing["captured_amount"], listing["refunded_amount"], listing["refundable_amount"]) == (
        "55.00",
        "55.00",
        "0.00",
    )
    assert [x["amount"] for x in listing["refunds"]] == ["15.00", "15.00", "25.00"]
    # nothing is left: another refund is a conflict, and a cancel refunds nothing more
    r = refund(api, order, {"amount": "0.01"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_captured"
    assert refunds.refund_remaining(store=store, payment_id=payment.pk).kind == "done"
    assert len(gateway_refunds(gw, order)) == 3


# ------------------------------------------------------------------------------- by lines


def test_a_refund_by_lines_with_restock_puts_the_units_back(api, store, order, gw, tee, mug):
    assert stock(tee) == (8, 0) and stock(mug) == (7, 0)
    r = refund(
        api, order, {"lines": [{"sku": "TEE", "quantity": 1}, {"sku": "MUG", "quantity": 2}], "restock": True}
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["amount"] == "30.00" and body["restock"] is True
    assert [(x["sku"], x["quantity"], x["amount"]) for x in body["lines"]] == [
        ("TEE", 1, "20.00"),
        ("MUG", 2, "10.00"),
    ]
    assert stock(tee) == (9, 0) and stock(mug) == (9, 0)
    returned = StockMovement.all_stores.filter(store=store, order_id=order.pk, kind="restock")
    assert sorted(returned.values_list("product__sku", "quantity", "on_hand_delta")) == [
        ("MUG", 2, 2),
        ("TEE", 1, 1),
    ]
    assert ledger_mismatches(store) == []
    assert event(store, "payment.partially_refunded", order).data["restocked"] == 3
    # the lines' remaining units: 1 TEE, 1 MUG
    r = refund(api, order, {"lines": [{"sku": "TEE", "quantity": 2}]})
    assert r.status_code == 400 and "lines[0].quantity" in r.json()["error"]["fields"]
    # a cancel afterwards returns only the units not returned yet, and refunds the rest of the money
    order_services.cancel(store=store, order=Order.all_stores.get(pk=order.pk), actor="t", reason="x")
    assert tasks.refund_payment(str(payment_of(order).pk), store.pk) == "refunded"
    assert stock(tee) == (10, 0) and stock(mug) == (10, 0)
    assert [b["amount"] for b in gateway_refunds(gw, order)] == ["30.00", "25.00"]


def test_a_refund_without_restock_leaves_the_stock(api, order, tee):
    line = order.items.get(sku="TEE")
    r = refund(api, order, {"lines": [{"line": line.pk, "quantity": 2}]})
    assert r.status_code == 201 and r.json()["amount"] == "40.00"
    assert stock(tee) == (8, 0)


# ------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "$"),
        ({"amount": "5.00", "lines": [{"sku": "TEE", "quantity": 1}]}, "$"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-3.00"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"lines": []}, "lines"),
        ({"lines": [{"sku": "NOPE", "quantity": 1}]}, "lines[0]"),
        ({"lines": [{"sku": "TEE", "quantity": 0}]}, "lines[0].quantity"),
        ({"lines": [{"sku": "TEE", "quantity": 3}]}, "lines[0].quantity"),
        ({"lines": [{"quantity": 1}]}, "lines[0]"),
        ({"amount": "5.00", "restock": True}, "restock"),
    ],
)
def test_invalid_refunds_are_refused_and_change_nothing(api, order, gw, body, field):
    r = refund(api, order, body)
    assert r.status_code == 400, r.content
    err = r.json()["error"]
    assert err["code"] == "validation_error" and field in err["fields"], err
    assert not Refund.all_stores.exists() and gateway_refunds(gw, order) == []


def test_an_over_refund_is_refused_and_changes_nothing(api, store, order, gw):
    assert refund(api, order, {"amount": "50.00"}).status_code == 201
    events_before = topics(store, order)
    r = refund(api, order, {"amount": "5.01"})
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "refund_exceeds_captured" and err["refundable_amount"] == "5.00"
    assert Refund.all_stores.count() == 1 and topics(store, order) == events_before
    assert payment_of(order).refunded_amount == Decimal("50.00")
    assert [b["amount"] for b in gateway_refunds(gw, order)] == ["50.00"]


def test_an_order_not_captured_cannot_be_refunded(api, store, tee):
    order = create_order(store, (tee, 1))
    r = refund(api, order, {"amount": "1.00"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_captured"


def test_refunds_are_json_only_and_store_scoped(api, api_b, order):
    r = api.post(f"/api/v1/orders/{order.pk}/refunds", {"amount": "1.00"})  # multipart form
    assert r.status_code == 415
    assert refund(api_b, order, {"amount": "1.00"}).status_code == 404
    assert api_b.get(f"/api/v1/orders/{order.pk}/refunds").status_code == 404
    assert not Refund.all_stores.exists()


def test_a_refusal_by_the_gateway_fails_the_refund_and_frees_its_amount(api, store, order, gw):
    Payment.all_stores.filter(order=order).update(gateway_charge_id="ch_unknown")
    r = refund(api, order, {"amount": "10.00"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "refund_refused"
    [row] = Refund.all_stores.all()
    assert row.status == "failed" and row.error_code == "charge_not_found"
    assert refunds.refundable_amount(payment_of(order)) == Decimal("55.00")
    assert "payment.refund_failed" in topics(store, order)


# ----------------------------------------------------------------------------- retries


def test_a_retried_refund_reuses_its_gateway_key(api, store, order, gw, settings):
    gw.control(failure_rate=1.0)  # every call a transient 5xx
    r = refund(api, order, {"amount": "12.00"}, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert r.status_code == 503 and r.json()["error"]["code"] == "gateway_unavailable"
    [row] = Refund.all_stores.all()
    assert row.status == "pending" and row.attempts == 1
    assert queued("payments.retry_refund") == [[str(row.pk), store.pk]]  # the task would finish it
    assert refunds.refundable_amount(payment_of(order)) == Decimal("43.00")  # held while pending
    gw.control(failure_rate=0.0)
    r = refund(api, order, {"amount": "12.00"}, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert r.status_code == 200 and r.json()["id"] == str(row.pk) and r.json()["status"] == "succeeded"
    row.refresh_from_db()
    assert row.attempts == 2
    [booked] = gateway_refunds(gw, order)
    assert booked["idempotency_key"] == row.idempotency_key and booked["amount"] == "12.00"
    # a third try replays the refund; a different body under the same key is refused
    assert refund(api, order, {"amount": "12.00"}, HTTP_IDEMPOTENCY_KEY="refund-1").status_code == 200
    r = refund(api, order, {"amount": "13.00"}, HTTP_IDEMPOTENCY_KEY="refund-1")
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert len(gateway_refunds(gw, order)) == 1 and payment_of(order).refunded_amount == Decimal("12.00")


def test_the_retry_task_finishes_a_pending_refund_once(store, order, gw):
    refund_row = Refund.all_stores.create(
        store=store, payment=payment_of(order), order=order, amount="7.00", currency="EUR",
        idempotency_key="refund-test-pending",
    )  # fmt: skip
    # the first call reached the gateway but its answer was lost: the gateway already refunded
    gateway.create_refund(
        charge_id=payment_of(order).gateway_charge_id,
        amount=Decimal("7.00"),
        idempotency_key="refund-test-pending",
    )
    assert tasks.retry_refund(str(refund_row.pk), store.pk) == "partially_refunded"
    assert tasks.retry_refund(str(refund_row.pk), store.pk) == "partially_refunded"
    assert len(gateway_refunds(gw, order)) == 1
    assert payment_of(order).refunded_amount == Decimal("7.00")


def test_the_reconciler_redrives_a_pending_refund_whose_retry_was_lost(store, order, gw):
    row = Refund.all_stores.create(
        store=store, payment=payment_of(order), order=order, amount="3.00", currency="EUR",
        idempotency_key="refund-test-lost", attempts=1,
    )  # fmt: skip
    Refund.all_stores.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert reconciler.reconcile_stuck_orders()["refund_retry_requeued"] == 1
    assert queued("payments.retry_refund") == [[str(row.pk), store.pk]]
    assert reconciler.reconcile_stuck_orders().get("refund_retry_requeued") is None  # touched: not twice
    assert tasks.retry_refund(str(row.pk), store.pk, attempt=2) == "partially_refunded"
