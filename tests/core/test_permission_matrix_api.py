"""The API's permission matrix (issue #14): every principal × every mutating /api/v1 endpoint.

Each action names the permission the endpoint needs and builds a real target, so an allowed call
succeeds and its change can be seen. What a principal holds comes from the policy tables
(orderflow/core/permissions.py), never from a copy here. Allowed → 2xx and the change happened;
refused → 403 (401 for anonymous; the other store's member is stopped by the middleware) and
nothing in either store changed.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from alerts import services as alert_services
from alerts import webhooks
from alerts.models import Alert, WebhookDelivery, WebhookEndpoint
from fulfillment.models import Fulfillment
from inventory.models import Product, StockLevel
from orderflow.core.events import Event, write_event
from orderflow.core.permissions import KEY_SCOPE_PERMS, NONE, ROLE_PERMS, Perm
from orderflow.core.tenancy import ApiKey, Store, StoreMembership, create_api_key
from orders.models import IdempotencyRecord, Order
from payments.models import Payment, Refund
from tests.conftest import StoreClient
from tests.factories import make_key, make_product, make_user, order_body
from tests.fulfillment.helpers import started, walk_to
from tests.orders.helpers import place
from tests.payments.helpers import create_order, failed_order, paid_order

pytestmark = pytest.mark.django_db

PUBLIC_IP = "93.184.216.34"  # what a webhook host resolves to here, should creation look it up

# ------------------------------------------------------------------------------ principals

ROLE_PRINCIPALS = {
    "owner": StoreMembership.Role.OWNER,
    "operator": StoreMembership.Role.OPERATOR,
    "viewer": StoreMembership.Role.VIEWER,
}
KEY_PRINCIPALS = {"read_only_key": ApiKey.Scope.READ_ONLY, "full_key": ApiKey.Scope.FULL}
PRINCIPALS = [*ROLE_PRINCIPALS, *KEY_PRINCIPALS, "other_store_member", "anonymous"]


def held(principal: str) -> frozenset[Perm]:
    """What the policy grants `principal` in store A."""
    if principal in ROLE_PRINCIPALS:
        return ROLE_PERMS[ROLE_PRINCIPALS[principal]]
    if principal in KEY_PRINCIPALS:
        return KEY_SCOPE_PERMS[KEY_PRINCIPALS[principal]]
    return NONE


def client_for(principal: str, store: Store, other_store: Store) -> APIClient:
    """A client acting as `principal`, naming store A in X-Store-ID."""
    if principal in KEY_PRINCIPALS:
        return StoreClient(store, make_key(store, scope=KEY_PRINCIPALS[principal]))
    client = StoreClient(store, None)
    if principal in ROLE_PRINCIPALS:
        client.force_login(make_user(store=store, role=ROLE_PRINCIPALS[principal], password=None))
    elif principal == "other_store_member":  # owns store B: no reach into A
        client.force_login(make_user(store=other_store, role=StoreMembership.Role.OWNER, password=None))
    return client


def denied_status(principal: str) -> int:
    return 401 if principal == "anonymous" else 403


# --------------------------------------------------------------------------------- snapshot


def world() -> dict[str, Any]:
    """Every row a mutating endpoint could change, in every store (what `refused` must not move)."""
    return {
        "events": sorted(Event.all_stores.values_list("pk", "topic")),
        "orders": sorted((str(o), s) for o, s in Order.all_stores.values_list("pk", "status")),
        "idempotency": IdempotencyRecord.all_stores.count(),
        "fulfillments": sorted(Fulfillment.all_stores.values_list("pk", "status")),
        "products": sorted(Product.all_stores.values_list("sku", "name", "price", "active")),
        "stock": sorted(StockLevel.all_stores.values_list("product_id", "on_hand", "reserved")),
        "alerts": sorted(Alert.all_stores.values_list("pk", "status")),
        "endpoints": sorted(
            (str(pk), url, active, description)
            for pk, url, active, description in WebhookEndpoint.all_stores.values_list(
                "pk", "url", "active", "description"
            )
        ),
        "deliveries": sorted(
            (str(pk), s, str(n))
            for pk, s, n in WebhookDelivery.all_stores.values_list("pk", "status", "next_attempt_at")
        ),
        "settings": sorted((s.slug, str(s.settings)) for s in Store.objects.all()),
        # last_used_at moves on every key's first use: not a change anyone made
        "keys": sorted(ApiKey.objects.values_list("prefix", "name", "scope", "revoked_at")),
        "payments": sorted((str(p), s, str(a)) for p, s, a in Payment.all_stores.values_list(
            "pk", "status", "refunded_amount")),
        "refunds": Refund.all_stores.count(),
    }  # fmt: skip


# ---------------------------------------------------------------------------------- actions


@dataclass
class Action:
    name: str
    perm: Perm
    setup: Callable[[Store], dict]  # builds the target in store A
    call: Callable[[APIClient, dict], Any]
    status: int  # the allowed call's answer
    happened: Callable[[dict], bool]  # the allowed call's change, seen in the database
    gateway: bool = False  # the setup and the call need the real mock gateway

    def __str__(self) -> str:
        return self.name


def _catalogue(store) -> dict:
    return {"product": make_product(store, "MX-1", price="10.00", stock=20)}


def _order(status: str = Order.Status.PENDING):
    def setup(store):
        ctx = _catalogue(store)
        ctx["order"] = create_order(store, (ctx["product"], 1), status=status)
        return ctx

    return setup


def _paid_order(store) -> dict:
    ctx = _catalogue(store)
    ctx["order"] = paid_order(store, (ctx["product"], 2))
    return ctx


def _order_status(ctx) -> str:
    return Order.all_stores.get(pk=ctx["order"].pk).status


def _fulfillment(status: str):
    def setup(store):
        return {"f": started(store) if status == Fulfillment.Status.PENDING else walk_to(store, status)}

    return setup


def _f_status(ctx) -> str:
    return Fulfillment.all_stores.get(pk=ctx["f"].pk).status


def _on_hand(ctx) -> int:
    return StockLevel.all_stores.get(product=ctx["product"]).on_hand


def _alert(store) -> dict:
    alert = alert_services.raise_alert(
        store=store, kind="low_stock", subject="sku:MX-1", severity="warning", message="low"
    )
    return {"alert": alert}


def _alert_status(ctx) -> str:
    return Alert.all_stores.get(pk=ctx["alert"].pk).status


def _endpoint(store) -> dict:
    endpoint, _ = webhooks.create_endpoint(
        store=store, url="https://hooks.example.com/orderflow", topics=["order.created"]
    )
    return {"endpoint": endpoint}


def _delivery(store) -> dict:
    ctx = _endpoint(store)
    event = write_event("order.created", store=store, data={})
    ctx["delivery"] = WebhookDelivery.all_stores.create(
        store=store, endpoint=ctx["endpoint"], event=event, topic=event.topic, status="failed", attempts=3
    )
    return ctx


def _target_key(store) -> dict:
    return {"key": create_api_key(store=store, name="checkout")[0]}


LEGACY = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "sku": ["MX-1"],
    "qty": [1],
    "card": "4242424242424242",
    "address": "1 Test Street",
    "city": "Berlin",
    "zip": "10115",
    "country": "DE",
}


def _post(path: str, body: dict | None = None):
    return lambda c, x: c.post(path.format(**x), body or {}, format="json")


ACTIONS = [
    Action("orders.place", Perm.PLACE_ORDERS, _catalogue, lambda c, x: place(c, order_body(("MX-1", 1))),
           202, lambda x: Order.all_stores.count() == 1),
    Action("legacy_orders.place", Perm.PLACE_ORDERS, _catalogue, _post("/api/v1/legacy/orders", LEGACY),
           202, lambda x: Order.all_stores.count() == 1),
    Action("orders.cancel", Perm.MANAGE_ORDERS, _order(), _post("/api/v1/orders/{order.pk}/cancel"),
           200, lambda x: _order_status(x) == "cancelled"),
    Action("orders.refund", Perm.MANAGE_ORDERS, _paid_order,
           _post("/api/v1/orders/{order.pk}/refunds", {"amount": "5.00"}),
           201, lambda x: Payment.all_stores.get(order=x["order"]).status == "partially_refunded",
           gateway=True),
    Action("orders.approve", Perm.MANAGE_ORDERS, _order("fraud_review"),
           _post("/api/v1/orders/{order.pk}/approve"),
           200, lambda x: _order_status(x) == "payment_processing"),
    Action("orders.reject", Perm.MANAGE_ORDERS, _order("fraud_review"),
           _post("/api/v1/orders/{order.pk}/reject"),
           200, lambda x: _order_status(x) == "rejected"),
    Action("orders.retry_payment", Perm.MANAGE_ORDERS,
           lambda s: {**(c := _catalogue(s)), "order": failed_order(s, (c["product"], 1))},
           _post("/api/v1/orders/{order.pk}/retry-payment"),
           202, lambda x: _order_status(x) == "pending"),
    Action("fulfillments.pick", Perm.MANAGE_FULFILLMENT, _fulfillment("pending"),
           _post("/api/v1/fulfillments/{f.pk}/pick"), 200, lambda x: _f_status(x) == "picking"),
    Action("fulfillments.pack", Perm.MANAGE_FULFILLMENT, _fulfillment("picking"),
           _post("/api/v1/fulfillments/{f.pk}/pack", {"packages": 1, "weight_grams": 500}),
           200, lambda x: _f_status(x) == "packed"),
    Action("fulfillments.ready", Perm.MANAGE_FULFILLMENT, _fulfillment("packed"),
           _post("/api/v1/fulfillments/{f.pk}/ready"), 200, lambda x: _f_status(x) == "ready_to_ship"),
    Action("fulfillments.ship", Perm.MANAGE_FULFILLMENT, _fulfillment("ready_to_ship"),
           _post("/api/v1/fulfillments/{f.pk}/ship", {"carrier": "dhl"}),
           200, lambda x: _f_status(x) == "shipped"),
    Action("products.create", Perm.MANAGE_STOCK, lambda s: {},
           _post("/api/v1/products", {"sku": "MX-NEW", "name": "New", "price": "5.00"}),
           201, lambda x: Product.all_stores.filter(sku="MX-NEW").exists()),
    Action("products.update", Perm.MANAGE_STOCK, _catalogue,
           lambda c, x: c.patch("/api/v1/products/MX-1", {"name": "Renamed"}, format="json"),
           200, lambda x: Product.all_stores.get(sku="MX-1").name == "Renamed"),
    Action("inventory.restock", Perm.MANAGE_STOCK, _catalogue,
           _post("/api/v1/inventory/MX-1/restock", {"quantity": 5}), 200, lambda x: _on_hand(x) == 25),
    Action("inventory.adjust", Perm.MANAGE_STOCK, _catalogue,
           _post("/api/v1/inventory/MX-1/adjust", {"delta": -1, "reason": "count"}),
           200, lambda x: _on_hand(x) == 19),
    Action("alerts.acknowledge", Perm.MANAGE_ALERTS, _alert, _post("/api/v1/alerts/{alert.pk}/acknowledge"),
           200, lambda x: _alert_status(x) == "acknowledged"),
    Action("alerts.resolve", Perm.MANAGE_ALERTS, _alert, _post("/api/v1/alerts/{alert.pk}/resolve"),
           200, lambda x: _alert_status(x) == "resolved"),
    Action("webhooks.create", Perm.MANAGE_WEBHOOKS, lambda s: {},
           _post("/api/v1/webhooks", {"url": "https://hooks.example.com/new", "topics": ["order.created"]}),
           201, lambda x: WebhookEndpoint.all_stores.filter(url="https://hooks.example.com/new").exists()),
    Action("webhooks.update", Perm.MANAGE_WEBHOOKS, _endpoint,
           lambda c, x: c.patch(f"/api/v1/webhooks/{x['endpoint'].pk}", {"description": "o"}, format="json"),
           200, lambda x: WebhookEndpoint.all_stores.get(pk=x["endpoint"].pk).description == "o"),
    Action("webhooks.delete", Perm.MANAGE_WEBHOOKS, _endpoint,
           lambda c, x: c.delete(f"/api/v1/webhooks/{x['endpoint'].pk}"),
           204, lambda x: not WebhookEndpoint.all_stores.filter(pk=x["endpoint"].pk).exists()),
    Action("webhooks.redeliver", Perm.MANAGE_WEBHOOKS, _delivery,
           _post("/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/redeliver"),
           202, lambda x: WebhookDelivery.all_stores.get(pk=x["delivery"].pk).status == "pending"),
    Action("store.update_settings", Perm.MANAGE_STORE, lambda s: {"store": s},
           lambda c, x: c.patch("/api/v1/store", {"fraud_review_threshold": 40}, format="json"),
           200, lambda x: Store.objects.get(pk=x["store"].pk).settings == {"fraud_review_threshold": 40}),
    Action("keys.create", Perm.MANAGE_KEYS, lambda s: {},
           _post("/api/v1/keys", {"name": "warehouse", "scope": "read_only"}),
           201, lambda x: ApiKey.objects.filter(name="warehouse", scope="read_only").exists()),
    Action("keys.revoke", Perm.MANAGE_KEYS, _target_key, _post("/api/v1/keys/{key.prefix}/revoke"),
           200, lambda x: ApiKey.objects.get(pk=x["key"].pk).revoked_at is not None),
]  # fmt: skip


@pytest.fixture(autouse=True)
def _public_dns(monkeypatch):
    """Webhook hosts resolve to a public address, should creation look them up (no real DNS)."""

    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if host in ("127.0.0.1", "localhost"):  # the mock gateway the refund row talks to
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_IP, port or 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.mark.parametrize("action", ACTIONS, ids=str)
@pytest.mark.parametrize("principal", PRINCIPALS)
def test_every_principal_on_every_mutating_endpoint(principal, action, store, other_store, request, settings):
    if action.gateway:
        settings.GATEWAY_URL = request.getfixturevalue("gateway").url
    ctx = action.setup(store)
    client = client_for(principal, store, other_store)
    before = world()
    response = action.call(client, ctx)
    if action.perm in held(principal):
        assert response.status_code == action.status, response.content
        assert action.happened(ctx)
    else:
        assert response.status_code == denied_status(principal), response.content
        code = "not_authenticated" if principal == "anonymous" else "forbidden"
        assert response.json()["error"]["code"] == code
        assert world() == before


def test_the_matrix_covers_every_permission_an_endpoint_declares():
    """Every Perm a view asks for a write has an action above (MANAGE_MEMBERS: no API yet)."""
    assert {a.perm for a in ACTIONS} == set(Perm) - {Perm.VIEW, Perm.MANAGE_MEMBERS}


# ----------------------------------------------------------------------------------- reads

READS = ["/api/v1/orders", "/api/v1/inventory", "/api/v1/products", "/api/v1/alerts", "/api/v1/fulfillments",
         "/api/v1/store", "/api/v1/dashboard/stats"]  # fmt: skip
OWNER_READS = {"/api/v1/webhooks": Perm.MANAGE_WEBHOOKS, "/api/v1/keys": Perm.MANAGE_KEYS}


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_reads(principal, store, other_store):
    client = client_for(principal, store, other_store)
    for url in READS:
        expected = 200 if Perm.VIEW in held(principal) else denied_status(principal)
        assert client.get(url).status_code == expected, url
    for url, perm in OWNER_READS.items():
        expected = 200 if perm in held(principal) else denied_status(principal)
        assert client.get(url).status_code == expected, url


def test_viewer_and_read_only_key_read_what_the_store_has(store, other_store):
    product = make_product(store, "MX-1", stock=20)
    order = create_order(store, (product, 1))
    alert_services.raise_alert(
        store=store, kind="low_stock", subject="sku:MX-1", severity="warning", message="m"
    )
    for principal in ("viewer", "read_only_key"):
        client = client_for(principal, store, other_store)
        assert client.get("/api/v1/orders").json()["results"][0]["id"] == str(order.pk)
        assert client.get(f"/api/v1/orders/{order.pk}").status_code == 200
        assert client.get("/api/v1/inventory").json()["results"][0]["sku"] == "MX-1"
        assert client.get("/api/v1/alerts").json()["count"] == 1


def test_a_method_a_view_does_not_have_is_405_not_403(store, other_store):
    client = client_for("viewer", store, other_store)
    assert client.delete("/api/v1/orders").status_code == 405
    assert (
        client_for("full_key", store, other_store).put("/api/v1/store", {}, format="json").status_code == 405
    )


def test_a_session_write_needs_the_csrf_token(store):
    owner = make_user(store=store, role=StoreMembership.Role.OWNER)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    r = client.patch("/api/v1/store", {"order_expiry_minutes": 30}, format="json", HTTP_X_STORE_ID=store.slug)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert Store.objects.get(pk=store.pk).settings == {}
    token = uuid.uuid4().hex  # 32 characters: a valid unmasked CSRF secret
    client.cookies["csrftoken"] = token
    r = client.patch(
        "/api/v1/store",
        {"order_expiry_minutes": 30},
        format="json",
        HTTP_X_STORE_ID=store.slug,
        HTTP_X_CSRFTOKEN=token,
    )
    assert r.status_code == 200, r.content
    assert Store.objects.get(pk=store.pk).settings == {"order_expiry_minutes": 30}
