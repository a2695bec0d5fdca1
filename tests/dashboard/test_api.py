import pytest
from django.utils import timezone

from tests.dashboard.helpers import make_order
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_stats_endpoint_answers_the_contract_fields(api, store):
    make_order(store, status="paid", payment_status="succeeded", total="12.50", paid_at=timezone.now())
    r = api.get("/api/v1/dashboard/stats")
    assert r.status_code == 200
    body = r.json()
    for field in [
        "orders_by_status", "orders", "revenue", "payment_success_rate", "fulfillment_rate",
        "orders_retrying_payment", "median_accept_to_paid_seconds", "median_paid_to_shipped_seconds",
        "low_stock_skus", "open_alerts_by_severity", "idempotent_replays_today", "recent_orders",
    ]:  # fmt: skip
        assert field in body, field
    assert body["revenue"]["today"] == "12.50"
    assert body["recent_orders"][0]["status"] == "paid"


def test_stats_endpoint_is_scoped_to_the_key_store(api, api_b, store, other_store):
    make_order(other_store, status="paid")
    assert sum(api.get("/api/v1/dashboard/stats").json()["orders_by_status"].values()) == 0
    assert api.as_store(other_store.slug).get("/api/v1/dashboard/stats").status_code == 403


def test_stats_endpoint_works_for_a_member_session(client, store, other_store):
    user = make_user(store=store)
    client.force_login(user)
    assert client.get("/api/v1/dashboard/stats", HTTP_X_STORE_ID=store.slug).status_code == 200
    assert client.get("/api/v1/dashboard/stats", HTTP_X_STORE_ID=other_store.slug).status_code == 403


def test_stats_endpoint_needs_credentials(client, store):
    r = client.get("/api/v1/dashboard/stats", HTTP_X_STORE_ID=store.slug)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"


def test_stats_endpoint_renders_in_the_browsable_api(client, store):
    client.force_login(make_user(store=store))
    r = client.get("/api/v1/dashboard/stats", HTTP_X_STORE_ID=store.slug, HTTP_ACCEPT="text/html")
    assert r.status_code == 200
    assert b"orders_by_status" in r.content
