"""The stock desk in the admin: lists, low-stock filter, read-only ledger, restock through the service."""

import pytest

from inventory.models import StockLevel, StockMovement
from tests.factories import make_product, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(make_user(superuser=True))
    return client


def test_admin_pages_render(admin_client, store):
    p = make_product(store, "A", stock=2, threshold=5)
    make_product(store, "B", stock=50, threshold=5)
    for url in [
        "/admin/inventory/product/",
        f"/admin/inventory/product/{p.pk}/change/",
        "/admin/inventory/stocklevel/",
        "/admin/inventory/stockmovement/",
    ]:
        assert admin_client.get(url).status_code == 200, url
    low = admin_client.get("/admin/inventory/stocklevel/?stock=low")
    assert b">A<" in low.content and b">B<" not in low.content


def test_ledger_is_read_only_in_admin(admin_client, store):
    make_product(store, "A", stock=2)
    row = StockMovement.all_stores.get()
    assert admin_client.get("/admin/inventory/stockmovement/add/").status_code == 403
    r = admin_client.post(f"/admin/inventory/stockmovement/{row.pk}/change/", {"quantity": 99})
    assert r.status_code == 403
    assert StockMovement.all_stores.get().quantity == 2


def test_restock_action_asks_for_n_then_calls_the_service(admin_client, store):
    p = make_product(store, "A", stock=2)
    form = admin_client.post(
        "/admin/inventory/product/", {"action": "restock_selected", "_selected_action": [p.pk]}
    )
    assert form.status_code == 200 and b"Restock" in form.content
    r = admin_client.post(
        "/admin/inventory/product/",
        {
            "action": "restock_selected",
            "_selected_action": [p.pk],
            "apply": "1",
            "quantity": 7,
            "note": "truck",
        },
    )
    assert r.status_code == 302
    assert StockLevel.all_stores.get(product=p).on_hand == 9
    row = StockMovement.all_stores.filter(product=p).first()
    assert (row.kind, row.quantity, row.note) == ("restock", 7, "truck")


def test_restock_action_from_stock_levels(admin_client, store):
    p = make_product(store, "A", stock=2)
    lv = StockLevel.all_stores.get(product=p)
    admin_client.post(
        "/admin/inventory/stocklevel/",
        {"action": "restock_selected", "_selected_action": [lv.pk], "apply": "1", "quantity": 3, "note": ""},
    )
    assert StockLevel.all_stores.get(product=p).on_hand == 5


def test_operator_sees_only_their_stores_products(client, store, other_store):
    make_product(store, "MINE", stock=1)
    make_product(other_store, "THEIRS", stock=1)
    client.force_login(make_user(store=store))  # the seed's operator: staff, operator role, no model perms
    r = client.get("/admin/inventory/product/")
    assert r.status_code == 200
    assert b"MINE" in r.content and b"THEIRS" not in r.content
