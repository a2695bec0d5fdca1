"""Page access rules and that every page renders with real data behind it."""

import pytest
from django.utils import timezone

from alerts.models import Alert
from dashboard.consumers import SESSION_STORE_KEY
from orderflow.core.tenancy import Store
from tests.dashboard.helpers import make_order
from tests.factories import make_product, make_user

pytestmark = pytest.mark.django_db

PAGES = [
    "/dashboard/",
    "/dashboard/orders/",
    "/dashboard/inventory/",
    "/dashboard/alerts/",
    "/dashboard/workflow/",
    "/dashboard/integrity/",
]


@pytest.mark.parametrize("url", PAGES + ["/dashboard/stores/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, store, url):
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/login/?next=/dashboard/")


@pytest.mark.parametrize("url", PAGES)
def test_member_sees_every_page_of_their_store(client, store, url):
    make_product(store, "TEE", stock=3, threshold=5)
    make_order(store, status="paid", payment_status="succeeded", paid_at=timezone.now())
    client.force_login(make_user(store=store))
    r = client.get(url)
    assert r.status_code == 200
    assert b"Store A" in r.content


@pytest.mark.parametrize("url", PAGES)
def test_non_member_gets_403_for_another_store(client, store, other_store, url):
    client.force_login(make_user(store=other_store))
    assert client.get(f"{url}?store={store.slug}").status_code == 403


def test_user_with_no_store_gets_403(client, store):
    client.force_login(make_user())
    assert client.get("/dashboard/").status_code == 403


def test_another_stores_order_page_is_404(client, store, other_store):
    theirs = make_order(other_store)
    client.force_login(make_user(store=store))
    assert client.get(f"/dashboard/orders/{theirs.pk}/").status_code == 404


def test_order_page_shows_items_timeline_and_actions(client, store):
    order = make_order(store, status="paid", payment_status="succeeded", paid_at=timezone.now())
    client.force_login(make_user(store=store))
    r = client.get(f"/dashboard/orders/{order.pk}/")
    assert r.status_code == 200
    assert f"Order #{order.number}".encode() in r.content
    assert b"Cancel order" in r.content  # paid orders may still be cancelled


def test_store_choice_is_remembered_in_the_session(client, store, other_store):
    user = make_user(store=store)
    from orderflow.core.tenancy import StoreMembership

    StoreMembership.objects.create(store=other_store, user=user)
    client.force_login(user)
    r = client.get(f"/dashboard/?store={other_store.slug}")
    assert r.status_code == 200
    assert client.session[SESSION_STORE_KEY] == other_store.slug
    r = client.get("/dashboard/orders/")
    assert b'data-store="store-b"' in r.content
    assert b'id="store-switcher"' in r.content


def test_stores_page_is_for_superusers_only(client, store):
    client.force_login(make_user(store=store))
    assert client.get("/dashboard/stores/").status_code == 403
    client.force_login(make_user(superuser=True))
    r = client.get("/dashboard/stores/")
    assert r.status_code == 200
    assert b"store-a" in r.content


def test_superuser_switches_edit_the_store_settings(client, store):
    client.force_login(make_user(superuser=True))
    r = client.post(
        f"/dashboard/stores/{store.slug}/switches",
        {"fulfillment_autopilot": "on", "fraud_review_threshold": "35"},
    )
    assert r.status_code == 302
    store = Store.objects.get(pk=store.pk)
    assert store.setting("fraud_check_enabled") is False
    assert store.setting("fulfillment_autopilot") is True
    assert store.setting("fraud_review_threshold") == 35


def test_member_cannot_post_store_switches(client, store):
    client.force_login(make_user(store=store))
    r = client.post(f"/dashboard/stores/{store.slug}/switches", {"fraud_review_threshold": "10"})
    assert r.status_code == 403
    assert Store.objects.get(pk=store.pk).settings == {}


def test_acknowledge_from_the_alerts_page(client, store):
    now = timezone.now()
    alert = Alert.all_stores.create(
        store=store, kind="low_stock", subject="sku:TEE", message="Low stock: TEE",
        first_seen_at=now, last_seen_at=now,
    )  # fmt: skip
    client.force_login(make_user(store=store))
    r = client.post(f"/dashboard/alerts/{alert.pk}/acknowledge", HTTP_ACCEPT="application/json")
    assert r.json() == {"id": alert.pk, "status": "acknowledged"}
    alert.refresh_from_db()
    assert alert.acknowledged_by.startswith("user-")


def test_restock_form_goes_through_the_inventory_service(client, store):
    make_product(store, "TEE", stock=2, threshold=5)
    client.force_login(make_user(store=store))
    r = client.post("/dashboard/inventory/", {"sku": "TEE", "quantity": "10", "note": "delivery"})
    assert r.status_code == 302
    page = client.get("/dashboard/inventory/")
    assert b"Restocked 10" in page.content
    from inventory.models import StockLevel

    assert StockLevel.all_stores.get(store=store).on_hand == 12


def test_test_order_form_places_an_order_through_the_order_service(client, store):
    make_product(store, "TEE", stock=10, price="19.90")
    client.force_login(make_user(store=store))
    r = client.post("/dashboard/", {"sku": "TEE", "quantity": "2", "card": "4242424242424242"})
    assert r.status_code == 302, r.content[:500]
    from orders.models import Order

    order = Order.all_stores.get(store=store)
    assert str(order.total) == "39.80"
    assert order.card_last4 == "4242"
    assert f"placed={order.pk}" in r["Location"]


def test_integrity_json_feeds_the_live_page(client, store):
    client.force_login(make_user(store=store))
    r = client.get("/dashboard/integrity/?format=json")
    body = r.json()
    assert set(body) >= {
        "idempotent_replays_today",
        "retrying_payments",
        "breaker",
        "outbox",
        "webhook_deliveries",
    }
    assert body["outbox"]["backlog"] == 0


def test_workflow_graph_is_generated_from_the_state_tables(client, store):
    from dashboard.selectors import workflow_graph
    from orders.models import Order

    graph = workflow_graph()
    order_machine = next(m for m in graph["machines"] if m["name"] == "Order")
    assert order_machine["initial"] == "pending"
    assert ["paid", "fulfilling"] in order_machine["edges"]
    assert len(order_machine["edges"]) == sum(len(v) for v in Order.TRANSITIONS.values())
    assert any("payment.processed" in h["topics"] for h in graph["handlers"])


def test_stores_page_tells_a_throttled_store(client, store, other_store, settings):
    from django.core.cache import cache

    from orderflow.core.tenancy import StoreKeyThrottle

    limit = StoreKeyThrottle().num_requests
    import time

    cache.set(f"throttle:{store.pk}:api_key:abc", [time.time()] * limit, 60)
    cache.set(f"throttle:{other_store.pk}:api_key:def", [time.time()], 60)
    from dashboard.selectors import stores_overview

    rows = {r["store"].slug: r for r in stores_overview()}
    assert rows["store-a"]["throttled"] is True
    assert rows["store-b"]["throttled"] is False
