"""Page access rules and that every page renders with real data behind it."""

import pytest
from django.utils import timezone

from alerts.models import Alert
from dashboard.consumers import SESSION_STORE_KEY
from inventory.models import StockLevel
from orderflow.core.tenancy import Store
from tests.dashboard.helpers import make_member, make_order
from tests.factories import make_product, make_user
from tests.payments.helpers import paid_order

pytestmark = pytest.mark.django_db

PAGES = [
    "/dashboard/",
    "/dashboard/orders/",
    "/dashboard/inventory/",
    "/dashboard/alerts/",
    "/dashboard/workflow/",
    "/dashboard/integrity/",
]


@pytest.mark.parametrize("url", PAGES + ["/dashboard/stores/", "/dashboard/settings/"])
def test_anonymous_visitors_are_sent_to_the_login_page(client, store, url):
    r = client.get(url)
    assert r.status_code == 302
    assert r["Location"].startswith("/admin/login/?next=/dashboard/")


@pytest.mark.parametrize("role", ["owner", "operator", "viewer"])
@pytest.mark.parametrize("url", PAGES)
def test_member_sees_every_page_of_their_store(client, store, url, role):
    make_product(store, "TEE", stock=3, threshold=5)
    make_order(store, status="paid", payment_status="succeeded", paid_at=timezone.now())
    client.force_login(make_member(store, role))
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


# ------------------------------------------------------------- roles: what each is offered


def _order_page(client, order):
    return client.get(f"/dashboard/orders/{order.pk}/").content


def test_a_viewer_is_offered_no_action_and_an_operator_is(client, store):
    order = make_order(store, status="fraud_review")
    make_product(store, "TEE", stock=3)
    now = timezone.now()
    Alert.all_stores.create(
        store=store, kind="low_stock", subject="sku:TEE", message="Low stock: TEE",
        first_seen_at=now, last_seen_at=now,
    )  # fmt: skip
    client.force_login(make_member(store, "viewer"))
    assert b"Approve (fraud review)" not in _order_page(client, order)
    assert b"Cancel order" not in _order_page(client, order)
    assert b'id="restock"' not in client.get("/dashboard/inventory/").content
    assert b'id="test-order"' not in client.get("/dashboard/").content
    assert b"Acknowledge</button>" not in client.get("/dashboard/alerts/").content

    client.force_login(make_member(store, "operator"))
    assert b"Approve (fraud review)" in _order_page(client, order)
    assert b"Cancel order" in _order_page(client, order)
    assert b'id="restock"' in client.get("/dashboard/inventory/").content
    assert b'id="test-order"' in client.get("/dashboard/").content
    assert b"Acknowledge</button>" in client.get("/dashboard/alerts/").content


@pytest.mark.parametrize("role, sees", [("owner", True), ("operator", False), ("viewer", False)])
def test_the_settings_page_is_in_the_nav_only_for_those_who_may_use_it(client, store, role, sees):
    client.force_login(make_member(store, role))
    assert (b"/dashboard/settings/" in client.get("/dashboard/").content) is sees
    assert client.get("/dashboard/settings/").status_code == (200 if sees else 403)


def test_the_settings_page_lists_every_setting_with_its_value(client, store):
    from orderflow.core.store_settings import SETTING_NAMES

    store.settings = {"fraud_high_risk_countries": ["KP", "SY"], "order_expiry_minutes": 90}
    store.save(update_fields=["settings"])
    client.force_login(make_member(store, "owner"))
    page = client.get("/dashboard/settings/").content.decode()
    for name in SETTING_NAMES:
        assert f'name="{name}"' in page
    assert 'value="KP, SY"' in page
    assert 'name="order_expiry_minutes" value="90"' in page


def test_the_settings_page_shows_errors_per_field_and_saves_nothing(client, store):
    client.force_login(make_member(store, "owner"))
    r = client.post(
        "/dashboard/settings/",
        {"fraud_check_enabled": "on", "fraud_review_threshold": "95", "fraud_reject_threshold": "90",
         "fraud_amount_limit": "-1", "fraud_high_risk_countries": "KP, Germany",
         "fulfillment_autopilot": "", "order_expiry_minutes": ""},
    )  # fmt: skip
    assert r.status_code == 200
    html = r.content.decode()
    assert html.count('class="invalid"') == 2  # two settings marked, each with its own messages
    assert html.count('class="small error field-error"') == 3  # the amount's, and the country's two
    assert "item 2: " in html  # which of the countries is wrong
    assert 'data-setting="fraud_amount_limit" class="invalid"' in html
    assert 'data-setting="fraud_high_risk_countries" class="invalid"' in html
    assert 'value="KP, GERMANY"' in html  # what was typed comes back, normalised
    assert Store.objects.get(pk=store.pk).settings == {}


def test_the_settings_page_shows_the_cross_field_rule_on_its_field(client, store):
    client.force_login(make_member(store, "owner"))
    r = client.post(
        "/dashboard/settings/",
        {"fraud_check_enabled": "on", "fraud_review_threshold": "95", "fraud_reject_threshold": "90",
         "fraud_amount_limit": "10", "fraud_high_risk_countries": "", "fulfillment_autopilot": "off",
         "order_expiry_minutes": "0"},
    )  # fmt: skip
    html = r.content.decode()
    assert 'data-setting="fraud_review_threshold" class="invalid"' in html
    assert "Must not be above fraud_reject_threshold." in html
    assert Store.objects.get(pk=store.pk).settings == {}


def test_the_settings_page_puts_a_setting_back_on_the_platform_default(client, store):
    from orderflow.core.events import Event

    store.settings = {"fulfillment_autopilot": True, "order_expiry_minutes": 30}
    store.save(update_fields=["settings"])
    client.force_login(make_member(store, "owner", username="ada"))
    r = client.post(
        "/dashboard/settings/",
        {"fraud_check_enabled": "on", "fraud_review_threshold": "50", "fraud_reject_threshold": "80",
         "fraud_amount_limit": "1000.00", "fraud_high_risk_countries": "KP, IR",
         "fulfillment_autopilot": "", "order_expiry_minutes": ""},
    )  # fmt: skip
    assert r.status_code == 302
    fresh = Store.objects.get(pk=store.pk)
    assert fresh.setting("fulfillment_autopilot") is None and fresh.setting("order_expiry_minutes") is None
    event = Event.all_stores.filter(store=store, topic="store.settings_changed").get()
    assert event.actor == "ada"
    assert event.data["changes"]["order_expiry_minutes"] == {"from": 30, "to": None}


def test_store_switches_refuse_an_invalid_threshold_with_a_message(client, store):
    client.force_login(make_user(superuser=True))
    url = f"/dashboard/stores/{store.slug}/switches"
    r = client.post(url, {"fraud_review_threshold": "101"}, follow=True)
    assert "fraud_review_threshold" in r.content.decode()
    assert Store.objects.get(pk=store.pk).settings == {}


def test_the_order_page_refunds_lines_with_restock_and_lists_the_refund(client, store, gateway, settings):
    settings.GATEWAY_URL = gateway.url
    tee = make_product(store, "TEE", price="20.00", stock=5)
    order = paid_order(store, (tee, 2))
    line = order.items.get()
    client.force_login(make_member(store, "operator"))
    page = _order_page(client, order)
    assert b'id="refund-form"' in page and f'name="qty_{line.pk}"'.encode() in page
    r = client.post(
        f"/dashboard/orders/{order.pk}/refund?store=store-a",
        {f"qty_{line.pk}": "1", "restock": "on", "reason": "damaged"},
    )
    assert r.status_code == 302
    assert StockLevel.all_stores.get(product=tee).on_hand == 4  # 5 − 2 sold + 1 back
    page = _order_page(client, order)
    assert b'id="refunds"' in page and b"damaged" in page and b"partially_refunded" in page
    assert b'max="1"' in page  # one unit of the line is left to refund
    # an amount over what remains is refused with a message, nothing moves
    r = client.post(f"/dashboard/orders/{order.pk}/refund?store=store-a", {"amount": "20.01"}, follow=True)
    assert b"exceeds" in r.content
    [charge] = gateway.ledger(order_id=str(order.pk))
    assert charge["refunded_amount"] == "20.00"
