"""Tracking: the operator's view and the shopper's public one (JSON and HTML), built by one selector."""

import re
from datetime import UTC, datetime

import pytest

from orderflow.core.events import write_event
from orderflow.core.statemachine import transition
from orders.models import Order
from tests.factories import make_product, order_body
from tests.orders.helpers import place

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(api, store):
    make_product(store, "SKU-1", stock=5)
    body = order_body(("SKU-1", 1), email="ada.secret@example.com")
    body["customer"]["name"] = "Ada Lovelace"
    body["shipping_address"].update({"line1": "12 Hidden Lane", "city": "London", "postal_code": "N1 9GU"})
    return Order.all_stores.get(pk=place(api, body).json()["id"])


def _ship(order: Order) -> None:
    for status in ("payment_processing", "paid", "fulfilling", "ready_to_ship", "shipped"):
        order.refresh_from_db()
        if order.status != status:  # paid opens the pick list at once: fulfilling
            transition(order, status, reason="test")
    data = {"carrier": "dhl", "tracking_number": "DHL123456", "estimated_delivery": "2031-01-03"}
    write_event("shipment.created", store=order.store, order_id=order.pk, data={**data, "status": "created"})
    write_event(
        "shipment.in_transit", store=order.store, order_id=order.pk, data={**data, "status": "in_transit"}
    )


PRIVATE = ("ada.secret", "Hidden Lane", "N1 9GU", "Lovelace", "4242")


def _leaks(secret: str, text: str) -> bool:
    """The secret as a word of its own: the card's last four must not be found inside a
    timestamp's microseconds ("…22:57:03.604242…", which made this test fail now and then)."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


def test_operator_tracking_has_status_timeline_and_shipment(api, order):
    _ship(order)
    r = api.get(f"/api/v1/orders/{order.pk}/tracking")
    assert r.status_code == 200
    data = r.json()
    assert data["status"] == "shipped"
    steps = [s["step"] for s in data["timeline"]]
    assert steps == ["placed", "payment_confirmed", "preparing", "ready_to_ship", "shipped", "in_transit"]
    assert all(s["at"] and s["label"] for s in data["timeline"])
    assert data["shipment"] == {
        "carrier": "dhl",
        "tracking_number": "DHL123456",
        "status": "in_transit",
        "estimated_delivery": "2031-01-03",
    }


def test_public_tracking_json_needs_no_credentials_and_hides_personal_data(client, order):
    _ship(order)
    r = client.get(f"/api/v1/track/{order.tracking_token}")
    assert r.status_code == 200
    data = r.json()
    assert data["customer"] == {"first_name": "Ada"}
    assert data["shipping"] == {"city": "London"}
    assert data["shipment"]["tracking_number"] == "DHL123456"
    text = r.content.decode()
    for secret in PRIVATE:
        assert not _leaks(secret, text)
    assert str(order.pk) not in text


def test_public_tracking_page_is_html_and_hides_personal_data(client, order):
    _ship(order)
    r = client.get(f"/track/{order.tracking_token}")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    html = r.content.decode()
    assert "Ada" in html and "London" in html and "DHL123456" in html and "In transit" in html
    assert "prefers-color-scheme" in html and "<script" not in html and "http" not in html.split("<body>")[0]
    for secret in PRIVATE:
        assert not _leaks(secret, html)


def test_fraud_outcomes_are_not_shown_to_the_shopper(client, order):
    transition(order, "fraud_review", reason="velocity")
    data = client.get(f"/api/v1/track/{order.tracking_token}").json()
    assert data["status"] == "pending"
    transition(order, "rejected", reason="fraud")
    data = client.get(f"/api/v1/track/{order.tracking_token}").json()
    assert data["status"] == "cancelled"
    assert "fraud" not in str(data).lower() and "reject" not in str(data).lower()


@pytest.mark.parametrize("token", ["nope", "x" * 100])
def test_unknown_token_is_404_page_and_404_json(client, token):
    r = client.get(f"/track/{token}")
    assert r.status_code == 404
    assert "could not find that order" in r.content.decode()
    r = client.get(f"/api/v1/track/{token}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


def test_cancelled_order_shows_cancelled_on_the_timeline(api, client, order):
    api.post(f"/api/v1/orders/{order.pk}/cancel")
    data = client.get(f"/api/v1/track/{order.tracking_token}").json()
    assert data["status"] == "cancelled"
    assert [s["step"] for s in data["timeline"]] == ["placed", "cancelled"]
    assert data["shipment"] is None


def test_tracking_of_another_stores_order_is_404(api_b, order):
    assert api_b.get(f"/api/v1/orders/{order.pk}/tracking").status_code == 404


def test_public_tracking_page_shows_times_in_the_stores_zone_in_24_hours(client, order, store):
    from orderflow.core.events import Event

    store.settings = {**(store.settings or {}), "timezone": "Asia/Tokyo"}
    store.save(update_fields=["settings"])
    Event.all_stores.filter(order_id=order.pk).update(created_at=datetime(2031, 1, 2, 15, 30, tzinfo=UTC))
    html = client.get(f"/track/{order.tracking_token}").content.decode()
    assert "Fri 3 Jan 2031, 00:30 JST" in html  # 15:30 UTC is half past midnight the next day in Tokyo
    assert " UTC<" not in html and "PM" not in html and "AM" not in html
