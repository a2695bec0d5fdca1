"""The fulfillment endpoints, exactly as the contract names them, and their tenancy."""

import pytest

from fulfillment.models import Fulfillment
from tests.fulfillment.helpers import started, walk_to

pytestmark = pytest.mark.django_db

FS = Fulfillment.Status


def url(f, action=""):
    return f"/api/v1/fulfillments/{f.pk}" + (f"/{action}" if action else "")


def test_list_is_paginated_newest_first_and_filters_by_status(api, store):
    a = started(store)
    b = walk_to(store, FS.PICKING)
    r = api.get("/api/v1/fulfillments")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 2 and [x["id"] for x in body["results"]] == [b.pk, a.pk]
    r = api.get("/api/v1/fulfillments", {"status": "picking"})
    assert [x["id"] for x in r.json()["results"]] == [b.pk]


def test_list_refuses_an_unknown_status_filter(api, store):
    r = api.get("/api/v1/fulfillments", {"status": "lost"})
    assert r.status_code == 400
    assert r.json()["error"]["fields"] == {"status": [r.json()["error"]["fields"]["status"][0]]}


def test_detail_shows_order_lines_status_packing_steps_and_shipment(api, store):
    f = walk_to(store, FS.SHIPPED)
    r = api.get(url(f))
    assert r.status_code == 200
    body = r.json()
    assert body["order_id"] == str(f.order_id) and body["status"] == "shipped"
    assert body["lines"] == [
        {"sku": "SKU-A", "name": "Product SKU-A", "quantity": 2, "picked": 2},
        {"sku": "SKU-B", "name": "Product SKU-B", "quantity": 1, "picked": 1},
    ]
    assert (body["packages"], body["weight_grams"]) == (1, 900)
    for step in ("picked", "packed", "ready", "shipped"):
        assert body[f"{step}_by"] == "t" and body[f"{step}_at"]
    shipment = body["shipment"]
    assert shipment["carrier"] == "dhl" and shipment["tracking_number"].startswith("DHL")
    assert shipment["status"] == "label_created" and shipment["estimated_delivery"]


def test_operator_walks_pick_pack_ready_ship_through_the_api(api, store):
    f = started(store)
    r = api.post(url(f, "pick"), {"lines": [{"sku": "SKU-A", "picked": 1}]}, format="json")
    assert r.status_code == 200 and r.json()["status"] == "picking"
    assert [x["picked"] for x in r.json()["lines"]] == [1, 0]
    assert api.post(url(f, "pick"), {}, format="json").json()["picked_by"].startswith("api_key:")
    r = api.post(url(f, "pack"), {"packages": 2, "weight_grams": 1500}, format="json")
    assert r.status_code == 200 and (r.json()["packages"], r.json()["weight_grams"]) == (2, 1500)
    assert api.post(url(f, "ready")).json()["status"] == "ready_to_ship"
    r = api.post(url(f, "ship"), {"carrier": "ups"}, format="json")
    assert r.status_code == 200
    assert r.json()["status"] == "shipped" and r.json()["shipment"]["tracking_number"].startswith("UPS")


@pytest.mark.parametrize(
    "state, action, body",
    [
        (FS.PENDING, "pack", {"packages": 1, "weight_grams": 100}),
        (FS.PENDING, "ready", None),
        (FS.PENDING, "ship", {"carrier": "dhl"}),
        (FS.PACKED, "pick", {}),
        (FS.SHIPPED, "ready", None),
        (FS.CANCELLED, "pick", {}),
    ],
)
def test_out_of_order_steps_are_409_invalid_transition(api, store, state, action, body):
    f = walk_to(store, state)
    r = api.post(url(f, action), body, format="json")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "invalid_transition"


def test_packing_before_everything_is_picked_is_409(api, store):
    f = started(store)
    api.post(url(f, "pick"), {"lines": [{"sku": "SKU-A", "picked": 2}]}, format="json")
    r = api.post(url(f, "pack"), {"packages": 1, "weight_grams": 100}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"


@pytest.mark.parametrize(
    "action, body, field",
    [
        ("pick", {"lines": [{"sku": "NOPE", "picked": 1}]}, "lines[0].sku"),
        ("pick", {"lines": [{"sku": "SKU-A", "picked": 9}]}, "lines[0].picked"),
        ("pick", {"lines": [{"sku": "SKU-A", "picked": "x"}]}, "lines[0].picked"),
        ("pick", {"lines": []}, "lines"),
        ("pack", {"packages": 0, "weight_grams": 10}, "packages"),
        ("pack", {"packages": 1}, "weight_grams"),
        ("ship", {}, "carrier"),
    ],
)
def test_invalid_step_bodies_are_400_with_fields(api, store, action, body, field):
    state = FS.PICKING if action == "pack" else FS.PENDING
    f = walk_to(store, state)
    r = api.post(url(f, action), body, format="json")
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "validation_error" and field in err["fields"]
    assert Fulfillment.all_stores.get(pk=f.pk).status == state


def test_ship_with_an_unknown_carrier_is_400(api, store):
    f = walk_to(store, FS.READY_TO_SHIP)
    r = api.post(url(f, "ship"), {"carrier": "pigeon"}, format="json")
    assert r.status_code == 400 and "carrier" in r.json()["error"]["fields"]


def test_unknown_fulfillment_id_is_404(api, store):
    assert api.get("/api/v1/fulfillments/999999").status_code == 404


@pytest.mark.parametrize(
    "method, action, body",
    [
        ("get", "", None),
        ("post", "pick", {}),
        ("post", "pack", {"packages": 1, "weight_grams": 10}),
        ("post", "ready", None),
        ("post", "ship", {"carrier": "dhl"}),
    ],
)
def test_another_store_gets_404_for_our_fulfillments_and_changes_nothing(api_b, store, method, action, body):
    f = walk_to(store, FS.PICKING)
    r = getattr(api_b, method)(url(f, action), body, format="json")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert Fulfillment.all_stores.get(pk=f.pk).status == FS.PICKING


def test_another_stores_list_does_not_show_our_fulfillments(api_b, store):
    started(store)
    assert api_b.get("/api/v1/fulfillments").json()["count"] == 0


def test_key_of_store_a_naming_store_b_is_403(api, other_store, store):
    f = started(store)
    assert api.as_store(other_store.slug).get(url(f)).status_code == 403


def test_fulfillment_endpoints_need_credentials(client, store):
    f = started(store)
    r = client.get(url(f), HTTP_X_STORE_ID=store.slug)
    assert r.status_code == 401


def test_browsable_api_renders_the_step_form(api, store):
    f = started(store)
    r = api.get(url(f, "pick"), HTTP_ACCEPT="text/html")
    assert r.status_code == 405  # POST only, but the browsable page still renders
    assert b"<form" in r.content
