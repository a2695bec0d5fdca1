"""`expire`: the mechanics of closing an unpaid order (the payments reconciler decides when)."""

import pytest

from orderflow.core import vault
from orderflow.core.errors import InvalidTransition
from orderflow.core.events import Event
from orders import services
from orders.models import Order
from tests.factories import make_product, order_body
from tests.orders.helpers import place, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="15.00", stock=10)


def placed(api, qty=2) -> Order:
    r = place(api, order_body(("TEE", qty)))
    assert r.status_code == 202, r.content
    return Order.all_stores.get(pk=r.json()["id"])


@pytest.mark.parametrize("status", ["pending", "fraud_review", "payment_processing"])
def test_expiring_an_unpaid_order_releases_its_stock_and_emits_order_expired(
    api, store, product, status, django_capture_on_commit_callbacks
):
    order = placed(api)
    Order.all_stores.filter(pk=order.pk).update(status=status)
    vault.tokenize(store.pk, order.pk, {"card_number": "4242424242424242"})
    order.refresh_from_db()

    with django_capture_on_commit_callbacks(execute=True):
        expired = services.expire(store=store, order=order, reason="not paid within 60 minutes")

    assert expired.status == Order.all_stores.get(pk=order.pk).status == "expired"
    assert stock(product) == (10, 0)
    assert vault.detokenize(store.pk, order.pk) is None  # nothing left to charge with
    event = Event.all_stores.get(store=store, order_id=order.pk, topic="order.expired")
    assert event.actor == "reconciler"
    assert {k: event.data[k] for k in ("reason", "previous_status", "units_released", "from", "to")} == {
        "reason": "not paid within 60 minutes",
        "previous_status": status,
        "units_released": 2,
        "from": status,
        "to": "expired",
    }


def test_expiring_twice_is_a_no_op(api, store, product):
    order = placed(api)
    services.expire(store=store, order=order, reason="late")
    services.expire(store=store, order=order, reason="late again")
    assert Event.all_stores.filter(order_id=order.pk, topic="order.expired").count() == 1
    assert stock(product) == (10, 0)


@pytest.mark.parametrize("status", ["paid", "cancelled", "payment_failed"])
def test_a_paid_or_closed_order_cannot_expire(api, store, product, status):
    order = placed(api)
    Order.all_stores.filter(pk=order.pk).update(status=status)
    with pytest.raises(InvalidTransition):
        services.expire(store=store, order=order, reason="late")
    assert Order.all_stores.get(pk=order.pk).status == status
    assert stock(product) == (10, 2)


def test_the_expiry_window_is_the_stores_setting_else_the_platform_default(store, settings):
    settings.ORDER_EXPIRY_MINUTES = 45
    assert services.expiry_minutes(store) == 45
    store.settings = {"order_expiry_minutes": 15}
    assert services.expiry_minutes(store) == 15
    store.settings = {"order_expiry_minutes": 0}
    assert services.expiry_minutes(store) == 0
