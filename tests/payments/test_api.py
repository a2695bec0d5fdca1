"""Operator review endpoints and the payment read, through HTTP with a store key."""

import pytest

from orders.models import Order
from payments import services
from tests.factories import make_product
from tests.payments.helpers import create_order, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="20.00", stock=10)


@pytest.fixture
def held(store, product):
    order = create_order(store, (product, 2), country="IR")
    services.screen_order(store=store, order_id=order.pk)
    assert Order.all_stores.get(pk=order.pk).status == "fraud_review"
    return order


def test_approve_sends_a_held_order_to_payment(api, held):
    r = api.post(f"/api/v1/orders/{held.pk}/approve")
    assert r.status_code == 200, r.content
    assert r.json()["id"] == str(held.pk) and r.json()["status"] == "payment_processing"
    assert r.json()["risk"]["decision"] == "review"
    payment = api.get(f"/api/v1/orders/{held.pk}/payment").json()
    assert payment["status"] == "pending" and payment["amount"] == "40.00" and payment["attempts_log"] == []


def test_reject_closes_a_held_order_and_releases_its_stock(api, held, product):
    assert stock(product) == (10, 2)
    r = api.post(f"/api/v1/orders/{held.pk}/reject", {"reason": "card reported stolen"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "rejected"
    assert stock(product) == (10, 0)


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_deciding_an_order_not_in_review_is_a_conflict(api, store, product, action):
    order = create_order(store, (product, 1))
    services.screen_order(store=store, order_id=order.pk)
    r = api.post(f"/api/v1/orders/{order.pk}/{action}")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "invalid_transition"
    assert Order.all_stores.get(pk=order.pk).status == "payment_processing"


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_another_stores_order_is_not_found(api_b, held, action):
    r = api_b.post(f"/api/v1/orders/{held.pk}/{action}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert Order.all_stores.get(pk=held.pk).status == "fraud_review"
    assert api_b.get(f"/api/v1/orders/{held.pk}/payment").status_code == 404


def test_the_same_key_naming_another_store_is_forbidden(api, held, other_store):
    r = api.as_store(other_store.slug).post(f"/api/v1/orders/{held.pk}/approve")
    assert r.status_code == 403


def test_review_decisions_need_credentials(client, held, store):
    r = client.post(f"/api/v1/orders/{held.pk}/approve", HTTP_X_STORE_ID=store.slug)
    assert r.status_code == 401


def test_an_order_without_payment_has_no_payment_to_show(api, held):
    r = api.get(f"/api/v1/orders/{held.pk}/payment")
    assert r.status_code == 404


def test_a_reject_reason_is_validated(api, held):
    r = api.post(f"/api/v1/orders/{held.pk}/reject", {"reason": "x" * 501}, format="json")
    assert r.status_code == 400 and "reason" in r.json()["error"]["fields"]
