"""The Inventory section of the contract: paths, codes, fields; bad input changes nothing;
another store's SKU is a 404."""

import pytest

from inventory.models import Product, StockLevel, StockMovement
from orderflow.core.events import Event
from tests.conftest import StoreClient
from tests.factories import make_product, make_user

pytestmark = pytest.mark.django_db


def counts():
    return (
        Product.all_stores.count(),
        StockMovement.all_stores.count(),
        list(StockLevel.all_stores.order_by("id").values_list("on_hand", "reserved", "low_stock_threshold")),
        list(Product.all_stores.order_by("id").values_list("name", "price", "active", "lead_time_days")),
        Event.all_stores.count(),
    )


# ------------------------------------------------------------------------------ products


def test_create_product_is_201_with_stock(api, store):
    r = api.post(
        "/api/v1/products",
        {
            "sku": "TSHIRT-M",
            "name": "T-shirt M",
            "description": "Cotton",
            "price": "19.90",
            "currency": "EUR",
            "active": True,
            "initial_stock": 25,
            "low_stock_threshold": 5,
            "lead_time_days": 7,
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    body = r.json()
    assert r["Location"] == "/api/v1/products/TSHIRT-M"
    assert body["price"] == "19.90" and body["on_hand"] == 25 and body["available"] == 25
    assert body["low_stock_threshold"] == 5 and body["lead_time_days"] == 7 and body["is_low"] is False
    row = StockMovement.all_stores.get(product__sku="TSHIRT-M")
    assert row.actor.startswith("api_key:")


def test_create_with_only_required_fields_uses_defaults(api, store):
    r = api.post("/api/v1/products", {"sku": "A", "name": "A", "price": "1.00"}, format="json")
    assert r.status_code == 201
    assert r.json()["currency"] == store.currency and r.json()["low_stock_threshold"] == 10


def test_duplicate_sku_is_409_sku_exists(api, store):
    make_product(store, "A")
    before = counts()
    r = api.post("/api/v1/products", {"sku": "A", "name": "A", "price": "1.00"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "sku_exists"
    assert counts() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "price": "1.00"}, "sku"),
        ({"sku": "A", "price": "1.00"}, "name"),
        ({"sku": "A", "name": "x"}, "price"),
        ({"sku": "A B", "name": "x", "price": "1.00"}, "sku"),
        ({"sku": 12, "name": "x", "price": "1.00"}, "sku"),
        ({"sku": "A", "name": "x", "price": "-1.00"}, "price"),
        ({"sku": "A", "name": "x", "price": "1.001"}, "price"),
        ({"sku": "A", "name": "x", "price": True}, "price"),
        ({"sku": "A", "name": "x", "price": "1.00", "active": "yes"}, "active"),
        ({"sku": "A", "name": "x", "price": "1.00", "active": 1}, "active"),
        ({"sku": "A", "name": "x", "price": "1.00", "initial_stock": -1}, "initial_stock"),
        ({"sku": "A", "name": "x", "price": "1.00", "initial_stock": 1.5}, "initial_stock"),
        ({"sku": "A", "name": "x", "price": "1.00", "initial_stock": "5"}, "initial_stock"),
        ({"sku": "A", "name": "x", "price": "1.00", "initial_stock": 10**9}, "initial_stock"),
        ({"sku": "A", "name": "x", "price": "1.00", "low_stock_threshold": -5}, "low_stock_threshold"),
        ({"sku": "A", "name": "x", "price": "1.00", "lead_time_days": "soon"}, "lead_time_days"),
        ({"sku": "A", "name": "x", "price": "1.00", "currency": "eu"}, "currency"),
        ({"sku": "A", "name": "x", "price": "1.00", "on_hand": 5}, "on_hand"),
    ],
)
def test_create_product_bad_input_is_400_with_fields_and_writes_nothing(api, body, field):
    before = counts()
    r = api.post("/api/v1/products", body, format="json")
    assert r.status_code == 400, r.json()
    err = r.json()["error"]
    assert err["code"] == "validation_error" and field in err["fields"]
    assert counts() == before


def test_create_product_body_must_be_an_object(api):
    r = api.post("/api/v1/products", [1, 2], format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_error"


def test_list_products_is_paginated_and_filterable(api, store):
    make_product(store, "A")
    make_product(store, "B", active=False)
    r = api.get("/api/v1/products")
    assert r.status_code == 200
    assert [p["sku"] for p in r.json()["results"]] == ["A", "B"] and r.json()["count"] == 2
    assert [p["sku"] for p in api.get("/api/v1/products?active=true").json()["results"]] == ["A"]
    assert [p["sku"] for p in api.get("/api/v1/products?search=b").json()["results"]] == ["B"]
    assert api.get("/api/v1/products?active=maybe").status_code == 400


def test_get_product_and_unknown_is_404(api, store):
    make_product(store, "A", price="4.20", stock=7)
    r = api.get("/api/v1/products/A")
    assert r.status_code == 200 and r.json()["price"] == "4.20" and r.json()["on_hand"] == 7
    r = api.get("/api/v1/products/NOPE")
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_not_found"


def test_patch_product_changes_allowed_fields(api, store):
    make_product(store, "A", stock=7)
    r = api.patch(
        "/api/v1/products/A",
        {
            "name": "Renamed",
            "price": "5.55",
            "active": False,
            "low_stock_threshold": 3,
            "lead_time_days": None,
        },
        format="json",
    )
    assert r.status_code == 200, r.json()
    b = r.json()
    assert (b["name"], b["price"], b["active"], b["low_stock_threshold"]) == ("Renamed", "5.55", False, 3)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"on_hand": 100}, "on_hand"),
        ({"reserved": 0}, "reserved"),
        ({"sku": "B"}, "sku"),
        ({"price": "abc"}, "price"),
        ({"active": "false"}, "active"),
        ({"name": ""}, "name"),
        ({"low_stock_threshold": 2.5}, "low_stock_threshold"),
        ({}, "$"),
    ],
)
def test_patch_bad_input_is_400_and_changes_nothing(api, store, body, field):
    make_product(store, "A", stock=7)
    before = counts()
    r = api.patch("/api/v1/products/A", body, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()["error"]["fields"]
    assert counts() == before


# ----------------------------------------------------------------------------- inventory


def test_inventory_lists_levels_with_low_filter(api, store):
    make_product(store, "A", stock=100, threshold=5)
    make_product(store, "B", stock=3, threshold=5)
    r = api.get("/api/v1/inventory")
    assert r.status_code == 200
    rows = {row["sku"]: row for row in r.json()["results"]}
    assert rows["B"] == {
        "sku": "B",
        "name": rows["B"]["name"],
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
        "low_stock_threshold": 5,
        "is_low": True,
        "days_of_cover": None,
        "lead_time_days": None,
        "updated_at": rows["B"]["updated_at"],
    }
    assert [row["sku"] for row in api.get("/api/v1/inventory?low=true").json()["results"]] == ["B"]
    assert [row["sku"] for row in api.get("/api/v1/inventory?sku=A").json()["results"]] == ["A"]
    assert api.get("/api/v1/inventory?low=yes").status_code == 400


def test_restock_adds_stock_and_answers_the_level(api, store):
    make_product(store, "A", stock=2)
    r = api.post("/api/v1/inventory/A/restock", {"quantity": 10, "note": "PO-1"}, format="json")
    assert r.status_code == 200, r.json()
    assert r.json()["on_hand"] == 12 and r.json()["available"] == 12


def test_adjust_moves_stock_and_refuses_below_reserved(api, store):
    import uuid

    from inventory.services import reserve_stock

    p = make_product(store, "A", stock=10)
    reserve_stock(store=store, lines=[(p.pk, 8)], order_id=uuid.uuid4())
    r = api.post("/api/v1/inventory/A/adjust", {"delta": -2, "reason": "damaged"}, format="json")
    assert r.status_code == 200 and r.json()["on_hand"] == 8
    before = counts()
    r = api.post("/api/v1/inventory/A/adjust", {"delta": -1, "reason": "damaged"}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "below_reserved"
    assert counts() == before


RESTOCK_BAD = [
    {"quantity": 0},
    {"quantity": -1},
    {"quantity": 1.5},
    {"quantity": "5"},
    {"quantity": True},
    {"quantity": None},
    {"quantity": 1_000_001},
    {"quantity": 10**20},
    {},
    {"quantity": 5, "note": 7},
    {"quantity": 5, "note": "x" * 501},
    {"quantity": 5, "extra": 1},
]
ADJUST_BAD = [
    {"delta": 0, "reason": "x"},
    {"delta": 1.5, "reason": "x"},
    {"delta": "-1", "reason": "x"},
    {"delta": False, "reason": "x"},
    {"delta": 1_000_001, "reason": "x"},
    {"delta": -1_000_001, "reason": "x"},
    {"delta": 1},
    {"reason": "x"},
    {"delta": 1, "reason": ["x"]},
]


@pytest.mark.parametrize("body", RESTOCK_BAD)
def test_restock_bad_input_is_400_and_changes_nothing(api, store, body):
    make_product(store, "A", stock=2)
    before = counts()
    r = api.post("/api/v1/inventory/A/restock", body, format="json")
    assert r.status_code == 400, r.json()
    assert r.json()["error"]["code"] == "validation_error" and r.json()["error"]["fields"]
    assert counts() == before


@pytest.mark.parametrize("body", ADJUST_BAD)
def test_adjust_bad_input_is_400_and_changes_nothing(api, store, body):
    make_product(store, "A", stock=2)
    before = counts()
    r = api.post("/api/v1/inventory/A/adjust", body, format="json")
    assert r.status_code == 400, r.json()
    assert r.json()["error"]["code"] == "validation_error" and r.json()["error"]["fields"]
    assert counts() == before


@pytest.mark.parametrize(
    "action, body", [("restock", {"quantity": 1}), ("adjust", {"delta": 1, "reason": "x"})]
)
def test_unknown_sku_is_404_and_changes_nothing(api, store, action, body):
    before = counts()
    r = api.post(f"/api/v1/inventory/NOPE/{action}", body, format="json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_not_found"
    assert counts() == before


def test_malformed_json_is_400(api, store):
    make_product(store, "A", stock=2)
    r = api.post("/api/v1/inventory/A/restock", "{nope", content_type="application/json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"


def test_trailing_slash_paths_do_not_exist(api, store):
    make_product(store, "A", stock=2)
    assert api.get("/api/v1/inventory/").status_code == 404


def test_movements_list_the_ledger_newest_first(api, store):
    make_product(store, "A", stock=2)
    api.post("/api/v1/inventory/A/restock", {"quantity": 3, "note": "PO"}, format="json")
    api.post("/api/v1/inventory/A/adjust", {"delta": -1, "reason": "broken"}, format="json")
    r = api.get("/api/v1/inventory/A/movements")
    assert r.status_code == 200
    rows = r.json()["results"]
    assert [(m["kind"], m["quantity"], m["on_hand_delta"], m["note"]) for m in rows] == [
        ("adjust", -1, -1, "broken"),
        ("restock", 3, 3, "PO"),
        ("restock", 2, 2, "initial stock"),
    ]
    assert set(rows[0]) >= {
        "kind",
        "quantity",
        "on_hand_delta",
        "reserved_delta",
        "order_id",
        "actor",
        "note",
    }
    assert [m["kind"] for m in api.get("/api/v1/inventory/A/movements?kind=adjust").json()["results"]] == [
        "adjust"
    ]
    assert api.get("/api/v1/inventory/NOPE/movements").status_code == 404


# ------------------------------------------------------------------------------- tenancy


def test_store_b_cannot_see_or_touch_store_a_skus(api, api_b, store):
    make_product(store, "SECRET", stock=5)
    before = counts()
    assert api_b.get("/api/v1/products/SECRET").status_code == 404
    assert api_b.patch("/api/v1/products/SECRET", {"name": "x"}, format="json").status_code == 404
    assert api_b.post("/api/v1/inventory/SECRET/restock", {"quantity": 1}, format="json").status_code == 404
    assert (
        api_b.post("/api/v1/inventory/SECRET/adjust", {"delta": -1, "reason": "x"}, format="json").status_code
        == 404
    )
    assert api_b.get("/api/v1/inventory/SECRET/movements").status_code == 404
    assert api_b.get("/api/v1/products").json()["count"] == 0
    assert api_b.get("/api/v1/inventory").json()["count"] == 0
    assert counts() == before


def test_store_a_key_naming_store_b_is_403(api, other_store):
    make_product(other_store, "B1", stock=5)
    assert api.as_store(other_store.slug).get("/api/v1/products/B1").status_code == 403


def test_session_member_can_use_the_browsable_api_form(client, store):
    make_product(store, "A", stock=1)
    client.force_login(make_user(store=store))
    r = client.get("/api/v1/inventory", HTTP_X_STORE_ID=store.slug, HTTP_ACCEPT="text/html")
    assert r.status_code == 200 and b"A" in r.content
    r = client.post(  # what the raw-data form sends: the API takes JSON only
        "/api/v1/inventory/A/restock",
        {"quantity": 4, "note": "form"},
        content_type="application/json",
        HTTP_X_STORE_ID=store.slug,
    )
    assert r.status_code == 200, r.content
    assert StockLevel.all_stores.get(product__sku="A").on_hand == 5


def test_unauthenticated_is_401(store):
    make_product(store, "A")
    assert StoreClient(store, None).get("/api/v1/products").status_code == 401


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/products",
        "/api/v1/products/A",
        "/api/v1/inventory",
        "/api/v1/inventory/A/restock",
        "/api/v1/inventory/A/adjust",
        "/api/v1/inventory/A/movements",
    ],
)
def test_every_endpoint_renders_in_the_browsable_api(client, store, url):
    make_product(store, "A", stock=1)
    client.force_login(make_user(store=store))
    r = client.get(url, HTTP_X_STORE_ID=store.slug, HTTP_ACCEPT="text/html")
    assert r.status_code in (200, 405), r.content[:500]
    assert b"<html" in r.content.lower()


def test_browsable_api_raw_data_form_offers_the_create_fields_as_json(client, store):
    client.force_login(make_user(store=store))
    r = client.get("/api/v1/products", HTTP_X_STORE_ID=store.slug, HTTP_ACCEPT="text/html")
    assert b"&quot;initial_stock&quot;" in r.content
    assert b'<option value="application/json"' in r.content
