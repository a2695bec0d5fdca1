"""Every list's query parameters are declared with django-filter: the schema lists them, the
browsable API shows its filter form, and a bad value is a 400 on the parameter's name."""

from __future__ import annotations

import pytest

from tests.factories import make_product, make_user

pytestmark = pytest.mark.django_db

LISTS = {
    "/api/v1/products": {"active", "search", "sku"},
    "/api/v1/inventory": {"sku", "low"},
    "/api/v1/inventory/{sku}/movements": {"kind"},
    "/api/v1/fulfillments": {"status"},
    "/api/v1/alerts": {"status", "kind", "severity"},
    "/api/v1/webhooks/{endpoint_id}/deliveries": {"status"},
    "/api/v1/orders": {"status", "payment_status", "fulfillment_status", "updated_after"},
}


def test_the_schema_lists_every_lists_filters(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for path, wanted in LISTS.items():
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert wanted <= names, path


@pytest.mark.parametrize(
    "query",
    [
        "/api/v1/products?active=maybe",
        "/api/v1/inventory?low=perhaps",
        "/api/v1/inventory/A/movements?kind=theft",
        "/api/v1/fulfillments?status=lost",
        "/api/v1/alerts?severity=apocalyptic",
        "/api/v1/orders?status=lost",
    ],
)
def test_a_bad_filter_value_is_400_on_its_name(api, store, query):
    make_product(store, "A")
    r = api.get(query)
    assert r.status_code == 400, r.content
    assert query.rsplit("?", 1)[1].split("=")[0] in r.json()["error"]["fields"]


def test_skus_may_be_a_comma_list_or_repeat(api, store):
    for sku in ("A", "B", "C"):
        make_product(store, sku)
    for query in ("sku=A,C", "sku=A&sku=C", "sku=A,%20C"):
        assert [p["sku"] for p in api.get(f"/api/v1/products?{query}").json()["results"]] == ["A", "C"]
        assert [p["sku"] for p in api.get(f"/api/v1/inventory?{query}").json()["results"]] == ["A", "C"]


def test_the_browsable_api_shows_the_filter_form(client, store):
    client.force_login(make_user(store=store))
    page = client.get(f"/api/v1/orders?store={store.slug}", HTTP_ACCEPT="text/html").content.decode()
    assert 'name="updated_after"' in page and 'name="payment_status"' in page
