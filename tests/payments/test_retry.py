"""A second chance after a failed payment (issue #15, item 3), in-process against the real mock
gateway: the operator's retry with the same card (API and dashboard), the shopper's pay-again
page with a new card, a retry when the stock is gone, and a double submit charging once. The
event handlers are run by hand, one step at a time, as the other payments unit tests do."""

from __future__ import annotations

import pytest
from django.test import Client

from inventory import services as inventory_services
from inventory.models import StockMovement
from orderflow.core import vault
from orderflow.core.events import Event
from orderflow.core.throttles import PerIPThrottle
from orders import services as order_services
from orders.models import Order
from payments import services
from payments.models import Payment, PaymentAttempt
from tests.dashboard.helpers import make_member
from tests.factories import make_product
from tests.payments.helpers import CARD_DECLINED, CARD_OK, create_order, event, stock, topics

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="20.00", stock=10)


def run_pipeline(store, order) -> Order:
    """What `payment.retry_requested` / `order.created` set going: fraud check, then every charge
    turn until the payment is final."""
    services.screen_order(store=store, order_id=order.pk)
    payment = services.ensure_payment(store=store, order_id=order.pk)
    if payment is not None:
        for _ in range(20):
            if services.attempt_charge(store=store, payment_id=payment.pk).kind == "done":
                break
    return Order.all_stores.get(pk=order.pk)


def declined(store, gw, product, card=CARD_OK) -> Order:
    """An order whose card the gateway declined once (decline_next), stock released."""
    if card == CARD_OK:
        gw.control(decline_next=1)
    order = run_pipeline(store, create_order(store, (product, 2), card=card))
    assert (order.status, order.payment_status) == ("payment_failed", "failed")
    assert stock(product) == (10, 0)  # the failed order holds nothing
    return order


def retry_api(api, order):
    return api.post(f"/api/v1/orders/{order.pk}/retry-payment", {}, format="json")


def charges(gw, order) -> list[dict]:
    return gw.ledger(order_id=str(order.pk))


def test_a_decline_then_an_operator_retry_with_the_same_card_is_paid_once(store, gw, api, product):
    order = declined(store, gw, product)
    first = Payment.all_stores.get(order=order)
    assert vault.detokenize(store.pk, order.pk)["card_number"] == CARD_OK  # kept for the retry

    r = retry_api(api, order)
    assert r.status_code == 202, r.content
    assert r.json()["status"] == "pending"
    assert stock(product) == (10, 2)  # reserved again
    requested = event(store, "payment.retry_requested", order)
    assert requested.data["requested_by"] == requested.actor != "shopper"  # the operator's name
    assert requested.data["new_card"] is False
    assert requested.data["previous_decline_code"] == "generic_decline"
    reopened = Payment.all_stores.get(order=order)
    assert (reopened.pk, reopened.status, reopened.attempts) == (first.pk, "pending", 0)
    assert reopened.idempotency_key != first.idempotency_key  # its own key at the gateway

    order = run_pipeline(store, order)
    assert (order.status, order.payment_status) == ("fulfilling", "succeeded")
    assert stock(product) == (8, 0)
    [charge] = charges(gw, order)
    assert charge["idempotency_key"] == reopened.idempotency_key
    assert [a.outcome for a in PaymentAttempt.all_stores.filter(payment=first).order_by("number")] == [
        "declined",
        "succeeded",
    ]
    trail = topics(store, order)
    after = trail[trail.index("payment.retry_requested") :]
    assert after[:3] == ["payment.retry_requested", "order.pending", "fraud.checked"]
    assert "order.paid" in after


def test_the_retry_is_refused_unless_payment_failed_and_a_second_post_changes_nothing(
    store, gw, api, product
):
    order = declined(store, gw, product)
    assert retry_api(api, order).status_code == 202
    moves = StockMovement.all_stores.filter(order_id=order.pk).count()
    key = Payment.all_stores.get(order=order).idempotency_key

    again = retry_api(api, order)  # the double submit
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    assert StockMovement.all_stores.filter(order_id=order.pk).count() == moves
    assert stock(product) == (10, 2)
    assert Payment.all_stores.get(order=order).idempotency_key == key
    assert topics(store, order).count("payment.retry_requested") == 1

    order = run_pipeline(store, order)
    run_pipeline(store, order)  # a redelivered handler finds the work done
    assert order.status == "fulfilling" and len(charges(gw, order)) == 1
    paid = retry_api(api, order)
    assert paid.status_code == 409 and paid.json()["error"]["code"] == "invalid_transition"


def test_an_operator_retry_without_the_card_in_the_vault_is_card_token_expired(store, gw, api, product):
    order = declined(store, gw, product)
    vault.forget(store.pk, order.pk)
    r = retry_api(api, order)
    assert r.status_code == 409 and r.json()["error"]["code"] == "card_token_expired"
    assert Order.all_stores.get(pk=order.pk).status == "payment_failed"
    assert stock(product) == (10, 0)


def test_a_retry_when_the_stock_is_gone_says_so_charges_nothing_and_reserves_nothing(
    store, gw, api, product, client
):
    order = declined(store, gw, product)
    inventory_services.adjust(store=store, sku="TEE", delta=-9, reason="damaged", actor="test")
    moves = StockMovement.all_stores.filter(store=store).count()
    payment = Payment.all_stores.get(order=order)

    r = retry_api(api, order)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "insufficient_stock" and "TEE" in r.json()["error"]["message"]

    page = client.post(
        f"/track/{order.tracking_token}/pay",
        {"card_number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2031", "cvc": "123"},
    )
    assert page.status_code == 409
    assert b"no longer available" in page.content and b"<li>Product TEE</li>" in page.content

    assert Order.all_stores.get(pk=order.pk).status == "payment_failed"
    assert stock(product) == (1, 0)
    assert StockMovement.all_stores.filter(store=store).count() == moves  # ledger unchanged
    fresh = Payment.all_stores.get(order=order)
    assert (fresh.status, fresh.idempotency_key) == ("failed", payment.idempotency_key)
    assert "payment.retry_requested" not in topics(store, order)
    assert charges(gw, order) == []
    assert vault.detokenize(store.pk, order.pk)["card_number"] == CARD_OK  # not replaced


def test_a_withdrawn_product_is_as_gone_as_a_sold_out_one(store, gw, api, product):
    order = declined(store, gw, product)
    inventory_services.update_product(store=store, sku="TEE", actor="test", active=False)
    r = retry_api(api, order)
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_stock"
    assert stock(product) == (10, 0)


# ------------------------------------------------------------------------------ the shopper


def test_the_tracking_page_offers_pay_again_only_while_the_payment_has_failed(store, gw, product, client):
    order = declined(store, gw, product, card=CARD_DECLINED)
    page = client.get(f"/track/{order.tracking_token}")
    assert page.status_code == 200 and b'id="pay-again"' in page.content
    assert f'href="/track/{order.tracking_token}/pay"'.encode() in page.content

    paid = run_pipeline(store, create_order(store, (product, 1)))
    assert paid.status == "fulfilling"
    assert b'id="pay-again"' not in client.get(f"/track/{paid.tracking_token}").content
    r = client.get(f"/track/{paid.tracking_token}/pay")
    assert r.status_code == 302 and r["Location"] == f"/track/{paid.tracking_token}"
    assert client.get("/track/not-a-token/pay").status_code == 404


def test_a_shopper_pays_again_with_a_new_card_from_the_public_page(store, gw, product, client):
    order = declined(store, gw, product, card=CARD_DECLINED)
    url = f"/track/{order.tracking_token}/pay"
    form = client.get(url)
    assert form.status_code == 200 and b"csrfmiddlewaretoken" in form.content
    assert form["Cache-Control"] == "no-store"
    assert form["Referrer-Policy"] == "same-origin"  # the token never leaves; the form's Origin stays ours

    bad = client.post(
        url, {"card_number": "4242424242424241", "exp_month": "13", "exp_year": "20x", "cvc": "1"}
    )
    assert bad.status_code == 400
    for text in (b"not a valid card number", b"3 or 4 digits"):
        assert text in bad.content
    assert b"4242424242424241" not in bad.content  # the number is never echoed back
    assert Order.all_stores.get(pk=order.pk).status == "payment_failed"

    new_card = {"card_number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2031", "cvc": "123"}
    r = client.post(url, new_card)
    assert r.status_code == 302 and r["Location"] == f"/track/{order.tracking_token}?payment=retried"
    fresh = Order.all_stores.get(pk=order.pk)
    assert (fresh.status, fresh.card_last4, fresh.card_brand) == ("pending", "4242", "visa")
    assert vault.detokenize(store.pk, order.pk) == {"card_number": CARD_OK, "exp_month": 12, "exp_year": 2031}
    requested = event(store, "payment.retry_requested", order)
    assert (requested.actor, requested.data["requested_by"], requested.data["new_card"]) == (
        "shopper",
        "shopper",
        True,
    )
    assert "card_number" not in requested.data

    again = client.post(url, new_card)  # the double submit
    assert again.status_code == 302 and again["Location"] == f"/track/{order.tracking_token}"
    assert topics(store, order).count("payment.retry_requested") == 1
    assert stock(product) == (10, 2)

    order = run_pipeline(store, order)
    assert order.status == "fulfilling" and len(charges(gw, order)) == 1
    page = client.get(f"/track/{order.tracking_token}?payment=retried")
    assert b"Payment tried again" in page.content and b'id="pay-again"' not in page.content


def test_the_pay_again_form_needs_its_csrf_token(store, gw, product):
    order = declined(store, gw, product, card=CARD_DECLINED)
    strict = Client(enforce_csrf_checks=True)
    r = strict.post(
        f"/track/{order.tracking_token}/pay",
        {"card_number": "4242424242424242", "exp_month": "12", "exp_year": "2031", "cvc": "123"},
    )
    assert r.status_code == 403
    assert Order.all_stores.get(pk=order.pk).status == "payment_failed"


def test_the_pay_again_page_is_throttled_per_ip_like_the_tracking_page(
    store, gw, product, client, monkeypatch
):
    order = declined(store, gw, product, card=CARD_DECLINED)
    monkeypatch.setattr(PerIPThrottle, "THROTTLE_RATES", {"public_ip": "2/min", "carrier_ip": "2/min"})
    url = f"/track/{order.tracking_token}/pay"
    codes = [client.get(url, REMOTE_ADDR="203.0.113.7").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = client.post(url, {"card_number": "4242424242424242"}, REMOTE_ADDR="203.0.113.7")
    assert r.status_code == 429 and Order.all_stores.get(pk=order.pk).status == "payment_failed"
    assert client.get(url, REMOTE_ADDR="198.51.100.1").status_code == 200


# ----------------------------------------------------------------------- vault and dashboard


def test_cancelling_a_failed_order_drops_its_card(store, gw, product, django_capture_on_commit_callbacks):
    order = declined(store, gw, product)
    with django_capture_on_commit_callbacks(execute=True):
        order_services.cancel(store=store, order=order, actor="test")
    assert vault.detokenize(store.pk, order.pk) is None


def test_the_dashboard_offers_retry_payment_on_a_failed_order_and_it_runs(store, gw, product):
    order = declined(store, gw, product)
    client = Client()
    client.force_login(make_member(store, "operator"))
    page = client.get(f"/dashboard/orders/{order.pk}/?store={store.slug}")
    assert b"Retry payment" in page.content
    r = client.post(f"/dashboard/orders/{order.pk}/retry_payment?store={store.slug}", {})
    assert r.status_code == 302
    assert Order.all_stores.get(pk=order.pk).status == "pending"
    requested = event(store, "payment.retry_requested", order)
    assert requested.data["requested_by"] == requested.actor != "shopper"
    assert Event.all_stores.filter(order_id=order.pk, topic="order.pending").count() == 1
    page = client.get(f"/dashboard/orders/{order.pk}/?store={store.slug}")
    assert b"Retry payment" not in page.content
