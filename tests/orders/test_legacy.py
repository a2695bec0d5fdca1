"""POST /api/v1/legacy/orders: the flat format (JSON or form) becomes the same order as the main API."""

import pytest

from orders.models import Order
from tests.factories import make_product, order_body
from tests.orders.helpers import place, row_counts

pytestmark = pytest.mark.django_db

LEGACY = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "sku": ["TSHIRT-M", "MUG"],
    "qty": ["2", "1"],
    "card": "4242424242424242",
    "address": "1 Test Street",
    "city": "Berlin",
    "zip": "10115",
    "country": "DE",
}


@pytest.fixture
def catalogue(store):
    make_product(store, "TSHIRT-M", price="19.90", stock=20)
    make_product(store, "MUG", price="7.50", stock=20)


def _same_order(a: dict, b: dict) -> None:
    for field in ("status", "items", "subtotal", "total", "currency", "customer", "shipping_address"):
        assert a[field] == b[field], field
    assert a["payment"]["brand"] == b["payment"]["brand"] and a["payment"]["last4"] == b["payment"]["last4"]


def test_legacy_json_and_form_make_the_same_order_as_the_main_api(api, catalogue):
    main = place(api, order_body(("TSHIRT-M", 2), ("MUG", 1), email="ada@example.com"))
    as_json = api.post("/api/v1/legacy/orders", {**LEGACY, "qty": [2, 1]}, format="json")
    as_form = api.post("/api/v1/legacy/orders", LEGACY)  # multipart form, repeated keys
    as_urlencoded = api.generic(
        "POST",
        "/api/v1/legacy/orders",
        "email=ada%40example.com&name=Ada+Lovelace&items=TSHIRT-M%3A2%2CMUG%3A1&card=4242424242424242"
        "&address=1+Test+Street&city=Berlin&zip=10115&country=DE",
        content_type="application/x-www-form-urlencoded",
    )
    for r in (main, as_json, as_form, as_urlencoded):
        assert r.status_code == 202, r.content
        assert r["Location"] == f"/api/v1/orders/{r.json()['id']}"
    for r in (as_json, as_form, as_urlencoded):
        _same_order(main.json(), r.json())
    assert Order.all_stores.count() == 4


def test_order_ref_is_the_idempotency_key(api, catalogue):
    body = {**LEGACY, "order_ref": "LEG-1001"}
    first = api.post("/api/v1/legacy/orders", body)
    again = api.post("/api/v1/legacy/orders", body)
    assert first.status_code == again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert Order.all_stores.count() == 1
    changed = api.post("/api/v1/legacy/orders", {**body, "qty": ["3", "1"]})
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"


def test_json_and_form_of_the_same_order_ref_are_one_request(api, catalogue):
    first = api.post("/api/v1/legacy/orders", {**LEGACY, "order_ref": "LEG-2"}, format="json")
    again = api.post("/api/v1/legacy/orders", {**LEGACY, "order_ref": "LEG-2"})
    assert first.status_code == 202 and again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    ("change", "legacy_field"),
    [
        ({"email": "nope"}, "email"),
        ({"name": ""}, "name"),
        ({"qty": ["0", "1"]}, "qty"),
        ({"qty": ["two", "1"]}, "qty"),
        ({"qty": ["1"]}, "qty"),
        ({"sku": ["NOPE", "MUG"]}, "sku"),
        ({"zip": ""}, "zip"),
        ({"country": "XX"}, "country"),
        ({"address": ""}, "address"),
        ({"city": ""}, "city"),
        ({"card": "4242424242424241"}, "card"),
        ({"items": "TSHIRT-M:x"}, "items"),
        ({"items": "TSHIRT-M"}, "items"),
    ],
)
def test_errors_come_back_under_legacy_names_and_nothing_is_written(api, catalogue, change, legacy_field):
    body = {**LEGACY, **change}
    if "items" in change:
        body.pop("sku"), body.pop("qty")
    before = row_counts()
    r = api.post("/api/v1/legacy/orders", body)
    assert r.status_code == 400, r.content
    fields = r.json()["error"]["fields"]
    assert legacy_field in fields, fields
    assert not any(k.startswith(("customer", "shipping_address", "payment", "items[")) for k in fields)
    assert row_counts() == before


def test_insufficient_stock_names_the_sku_and_maps_to_qty(api, catalogue):
    r = api.post("/api/v1/legacy/orders", {**LEGACY, "qty": ["21", "1"]})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "insufficient_stock" and error["skus"] == ["TSHIRT-M"]
    assert "qty" in error["fields"]


def test_legacy_needs_credentials_like_every_api(store, catalogue):
    from tests.conftest import StoreClient

    assert StoreClient(store, None).post("/api/v1/legacy/orders", LEGACY).status_code == 401
