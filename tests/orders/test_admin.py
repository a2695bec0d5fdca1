"""The orders admin: lists, searches, shows the event trail, cancels through the service."""

import pytest

from inventory.models import Product
from orders.models import Order
from tests.factories import make_product, make_user, order_body
from tests.orders.helpers import place, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(api, store):
    make_product(store, "SKU-1", stock=5)
    return Order.all_stores.get(pk=place(api, order_body(("SKU-1", 2), email="ops@example.com")).json()["id"])


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(superuser=True))
    return client


def test_changelist_filters_and_searches_by_number_and_email(admin_client, order):
    r = admin_client.get("/admin/orders/order/", {"status__exact": "pending"})
    assert r.status_code == 200 and "ops@example.com" in r.content.decode()
    r = admin_client.get("/admin/orders/order/", {"q": str(order.number)})
    assert r.status_code == 200 and "ops@example.com" in r.content.decode()
    r = admin_client.get("/admin/orders/order/", {"q": "ops@example"})
    assert r.status_code == 200 and "ops@example.com" in r.content.decode()
    r = admin_client.get("/admin/orders/order/", {"q": "nobody"})
    assert r.status_code == 200 and "ops@example.com" not in r.content.decode()


def test_change_page_shows_items_and_the_event_trail(admin_client, order):
    r = admin_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert r.status_code == 200
    html = r.content.decode()
    assert "SKU-1" in html and "order.created" in html


def test_cancel_action_calls_the_service(admin_client, order):
    r = admin_client.post(
        "/admin/orders/order/",
        {"action": "cancel_selected", "_selected_action": [str(order.pk)]},
        follow=True,
    )
    assert r.status_code == 200
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert stock(Product.all_stores.get(sku="SKU-1")) == (5, 0)


def test_operators_see_only_their_own_stores_orders(client, store, other_store, order):
    outsider, member = make_user(store=other_store), make_user(store=store)
    client.force_login(outsider)
    r = client.get("/admin/orders/order/")
    assert r.status_code == 200 and "ops@example.com" not in r.content.decode()
    client.force_login(member)
    r = client.get("/admin/orders/order/")
    assert r.status_code == 200 and "ops@example.com" in r.content.decode()
