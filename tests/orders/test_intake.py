"""POST /api/v1/orders: prices from the catalogue, stock reserved in the same transaction, 202."""

from decimal import Decimal

import pytest

from orderflow.core.events import Event
from orders.models import IdempotencyRecord, Order
from tests.factories import make_product, order_body
from tests.orders.helpers import place, row_counts, stock

pytestmark = pytest.mark.django_db


@pytest.fixture
def products(store):
    return {
        "TSHIRT-M": make_product(store, "TSHIRT-M", price="19.90", stock=10),
        "MUG": make_product(store, "MUG", price="7.50", stock=5),
    }


def test_order_is_accepted_with_202_location_and_catalogue_prices(api, store, products):
    body = order_body(("TSHIRT-M", 2), ("MUG", 1))
    body["items"][0]["unit_price"] = "0.01"  # a client-sent price is ignored
    r = place(api, body)
    assert r.status_code == 202, r.content
    data = r.json()
    assert r["Location"] == f"/api/v1/orders/{data['id']}"
    assert data["status"] == "pending"
    assert data["payment_status"] == "pending"
    assert data["fulfillment_status"] == "unfulfilled"
    assert data["items"] == [
        {
            "sku": "TSHIRT-M",
            "name": "Product TSHIRT-M",
            "quantity": 2,
            "unit_price": "19.90",
            "line_total": "39.80",
        },
        {"sku": "MUG", "name": "Product MUG", "quantity": 1, "unit_price": "7.50", "line_total": "7.50"},
    ]
    assert data["subtotal"] == "47.30" and data["total"] == "47.30" and data["currency"] == "EUR"
    assert data["payment"] == {"brand": "visa", "last4": "4242", "attempts": 0}
    assert data["risk"] == {"score": None, "decision": "", "rules": []}
    assert data["tracking_url"].endswith(f"/track/{data['tracking_token']}")
    assert data["customer"]["name"] == "Ada Lovelace"
    assert data["shipping_address"]["country"] == "DE"
    order = Order.all_stores.get(pk=data["id"])
    assert order.total == Decimal("47.30") and order.store == store


def test_stock_is_reserved_with_ledger_rows(api, products):
    place(api, order_body(("TSHIRT-M", 3)))
    assert stock(products["TSHIRT-M"]) == (10, 3)


def test_order_created_event_carries_no_card_data(api):
    make_product(api.store, "SKU-1", stock=5)
    r = place(api, order_body(("SKU-1", 1), card="4000000000000002"))
    event = Event.all_stores.get(topic="order.created", order_id=r.json()["id"])
    assert event.data["number"] == r.json()["number"]
    assert event.data["total"] == "10.00" and event.data["currency"] == "EUR"
    assert event.data["item_count"] == 1 and event.data["email_domain"] == "example.com"
    assert "4000000000000002" not in str(event.data) and "123" not in str(event.data.values())


def test_card_number_and_cvc_are_stored_nowhere(api):
    make_product(api.store, "SKU-1", stock=5)
    r = place(api, order_body(("SKU-1", 1), card="5555555555554444"))
    order = Order.all_stores.get(pk=r.json()["id"])
    assert (order.card_brand, order.card_last4) == ("mastercard", "4444")
    record = IdempotencyRecord.all_stores.get(order_id=order.pk)
    assert b"5555555555554444" not in bytes(record.response_body)
    values = [str(getattr(order, f.attname)) for f in Order._meta.fields]
    assert not any("5555555555554444" in v for v in values)


def test_order_numbers_are_sequential_per_store(api, api_b, store, other_store):
    make_product(store, "A", stock=10)
    make_product(other_store, "A", stock=10)
    numbers_a = [place(api, order_body(("A", 1))).json()["number"] for _ in range(3)]
    numbers_b = [place(api_b, order_body(("A", 1))).json()["number"] for _ in range(2)]
    assert numbers_a == sorted(set(numbers_a)) and len(numbers_a) == 3
    assert numbers_a[1] == numbers_a[0] + 1 and numbers_a[2] == numbers_a[1] + 1
    assert numbers_b[1] == numbers_b[0] + 1


def test_insufficient_stock_is_409_naming_the_sku_and_nothing_is_reserved(api, products):
    before = row_counts()
    r = place(api, order_body(("TSHIRT-M", 2), ("MUG", 6)))
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "insufficient_stock"
    assert error["skus"] == ["MUG"]
    assert row_counts() == before
    assert stock(products["TSHIRT-M"]) == (10, 0) and stock(products["MUG"]) == (5, 0)


def test_a_rejected_key_can_be_retried_with_a_corrected_body(api, products):
    r = place(api, order_body(("MUG", 6)), key="retry-me")
    assert r.status_code == 409
    r = place(api, order_body(("MUG", 5)), key="retry-me")
    assert r.status_code == 202
    assert stock(products["MUG"]) == (5, 5)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_orders_of_a_new_store_get_distinct_numbers(store):
    """The per-store number sequence is created on first use; twelve orders racing to create it
    all succeed (a loser of the creation race retries) and no number is given twice."""
    import threading

    from django.db import connection

    from orders import services
    from tests.conftest import StoreClient
    from tests.factories import make_key

    services._known_sequences.clear()
    make_product(store, "RACE", stock=100)
    raw_key = make_key(store)
    n = 12
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = place(StoreClient(store, raw_key), order_body(("RACE", 1)))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [202] * n
    numbers = sorted(Order.all_stores.filter(store=store).values_list("number", flat=True))
    assert len(set(numbers)) == n


@pytest.mark.django_db
def test_operator_in_the_browsable_api_may_give_the_key_as_a_query_parameter(client, store, products):
    """The browsable API's form cannot set headers; a signed-in member may pass ?idempotency_key=."""
    import json

    from tests.factories import make_user

    client.force_login(make_user(store=store))
    sku = make_product(store, "BROWSER-1", stock=5).sku
    body = json.dumps(order_body((sku, 1)))
    url = "/api/v1/orders?idempotency_key=browser-1"
    first = client.post(url, body, content_type="application/json", HTTP_X_STORE_ID=store.slug)
    assert first.status_code == 202
    again = client.post(url, body, content_type="application/json", HTTP_X_STORE_ID=store.slug)
    assert again["Idempotent-Replayed"] == "true" and Order.all_stores.count() == 1


@pytest.mark.django_db
def test_api_key_clients_must_send_the_header_not_a_query_parameter(api, products):
    r = api.post("/api/v1/orders?idempotency_key=k-1", order_body(("MUG", 1)), format="json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "idempotency_key_required"
    assert Order.all_stores.count() == 0
