"""Every dashboard POST × every kind of principal (issue #14): allowed → the change happened;
refused → 403 and nothing changed (the store's rows and event count are as they were).

The expectations are written out here, apart from the policy, so that the matrix checks it rather
than repeats it: owner — everything of their store; operator — orders, fulfillment, stock, alerts
and test orders, not the settings; viewer — nothing; a member of another store — nothing;
anonymous — the login page; platform staff — everything, and alone the stores page's switches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from alerts.models import Alert
from fulfillment.models import Fulfillment
from inventory.models import StockLevel
from orderflow.core.events import Event
from orderflow.core.tenancy import Store
from orders.models import Order
from payments.models import Payment
from tests.dashboard.helpers import make_member, make_order
from tests.factories import make_product, make_user
from tests.fulfillment.helpers import walk_to
from tests.payments.helpers import failed_order, paid_order

pytestmark = pytest.mark.django_db

F = Fulfillment.Status


@dataclass(frozen=True)
class Action:
    """A dashboard POST: what it needs to exist, where it posts, and how its effect shows."""

    setup: Callable[[Store], Any]
    url: Callable[[Any], str]
    data: Callable[[Any], dict]
    done: Callable[[Store, Any], bool]
    gateway: bool = False  # the setup and the POST need the real mock gateway


def _order_in(status: str):
    return lambda store: make_order(store, status=status)


def _fulfillment_in(status: str):
    return lambda store: walk_to(store, status)


def _order_status(store, order) -> str:
    return Order.all_stores.get(pk=order.pk).status


def _fulfillment_status(store, f) -> str:
    return Fulfillment.all_stores.get(pk=f.pk).status


def _open_alert(store) -> Alert:
    now = timezone.now()
    return Alert.all_stores.create(
        store=store, kind="low_stock", subject="sku:TEE", message="Low stock: TEE",
        first_seen_at=now, last_seen_at=now,
    )  # fmt: skip


SETTINGS_FORM = {
    "fraud_check_enabled": "off",
    "fraud_review_threshold": "40",
    "fraud_reject_threshold": "90",
    "fraud_amount_limit": "250.00",
    "fraud_high_risk_countries": "kp, ir, sy",
    "fulfillment_autopilot": "on",
    "order_expiry_minutes": "45",
}


def _settings_saved(store, _) -> bool:
    fresh = Store.objects.get(pk=store.pk)
    return fresh.settings == {
        "fraud_check_enabled": False,
        "fraud_review_threshold": 40,
        "fraud_reject_threshold": 90,
        "fraud_amount_limit": "250.00",
        "fraud_high_risk_countries": ["KP", "IR", "SY"],
        "fulfillment_autopilot": True,
        "order_expiry_minutes": 45,
    }


def _order_action(name: str) -> Callable[[Any], str]:
    return lambda order: f"/dashboard/orders/{order.pk}/{name}?store=store-a"


def _fulfillment_action(name: str) -> Callable[[Any], str]:
    return lambda f: f"/dashboard/orders/{f.order_id}/{name}?store=store-a"


def _paid_order(store):
    return paid_order(store, (make_product(store, "TEE", price="20.00", stock=5), 2))


def _refunded(store, order) -> bool:
    return Order.all_stores.get(pk=order.pk).payment_status == "partially_refunded"


ACTIONS: dict[str, Action] = {
    "refund": Action(
        _paid_order,
        _order_action("refund"),
        lambda o: {"qty_" + str(o.items.get().pk): "1", "restock": "on", "reason": "damaged"},
        _refunded,
        gateway=True,
    ),
    "approve": Action(
        _order_in("fraud_review"),
        _order_action("approve"),
        lambda o: {},
        lambda s, o: _order_status(s, o) == "payment_processing",
    ),
    "reject": Action(
        _order_in("fraud_review"),
        _order_action("reject"),
        lambda o: {"reason": "looks odd"},
        lambda s, o: _order_status(s, o) == "rejected",
    ),
    "cancel": Action(
        _order_in("pending"),
        _order_action("cancel"),
        lambda o: {"reason": "asked to"},
        lambda s, o: _order_status(s, o) == "cancelled",
    ),
    "retry_payment": Action(
        lambda store: failed_order(store, (make_product(store, "TEE", stock=5), 1)),
        _order_action("retry_payment"),
        lambda o: {},
        lambda s, o: _order_status(s, o) == "pending",
    ),
    "pick": Action(
        _fulfillment_in(F.PENDING),
        _fulfillment_action("pick"),
        lambda f: {},
        lambda s, f: _fulfillment_status(s, f) == F.PICKING,
    ),
    "pack": Action(
        _fulfillment_in(F.PICKING),
        _fulfillment_action("pack"),
        lambda f: {"packages": "1", "weight_grams": "800"},
        lambda s, f: _fulfillment_status(s, f) == F.PACKED,
    ),
    "ready": Action(
        _fulfillment_in(F.PACKED),
        _fulfillment_action("ready"),
        lambda f: {},
        lambda s, f: _fulfillment_status(s, f) == F.READY_TO_SHIP,
    ),
    "ship": Action(
        _fulfillment_in(F.READY_TO_SHIP),
        _fulfillment_action("ship"),
        lambda f: {"carrier": "dhl"},
        lambda s, f: _fulfillment_status(s, f) == F.SHIPPED,
    ),
    "restock": Action(
        lambda store: make_product(store, "TEE", stock=2),
        lambda p: "/dashboard/inventory/?store=store-a",
        lambda p: {"sku": "TEE", "quantity": "10", "note": "delivery"},
        lambda s, p: StockLevel.all_stores.get(product=p).on_hand == 12,
    ),
    "test_order": Action(
        lambda store: make_product(store, "TEE", stock=10),
        lambda p: "/dashboard/?store=store-a",
        lambda p: {"sku": "TEE", "quantity": "1", "card": "4242424242424242"},
        lambda s, p: Order.all_stores.filter(store=s).count() == 1,
    ),
    "acknowledge": Action(
        _open_alert,
        lambda a: f"/dashboard/alerts/{a.pk}/acknowledge?store=store-a",
        lambda a: {},
        lambda s, a: Alert.all_stores.get(pk=a.pk).status == "acknowledged",
    ),
    "resolve": Action(
        _open_alert,
        lambda a: f"/dashboard/alerts/{a.pk}/resolve?store=store-a",
        lambda a: {},
        lambda s, a: Alert.all_stores.get(pk=a.pk).status == "resolved",
    ),
    "settings": Action(
        lambda store: None,
        lambda _: "/dashboard/settings/?store=store-a",
        lambda _: SETTINGS_FORM,
        _settings_saved,
    ),
    "store_switches": Action(
        lambda store: None,
        lambda _: "/dashboard/stores/store-a/switches?store=store-a",
        lambda _: {"fulfillment_autopilot": "on", "fraud_review_threshold": "35"},
        lambda s, _: (
            Store.objects.get(pk=s.pk).settings
            == {"fraud_check_enabled": False, "fulfillment_autopilot": True, "fraud_review_threshold": 35}
        ),
    ),
}

OPERATIONS = {"approve", "reject", "cancel", "retry_payment", "refund", "pick", "pack", "ready", "ship",
              "restock", "test_order", "acknowledge", "resolve"}  # fmt: skip
ALLOWED: dict[str, set[str]] = {
    "owner": OPERATIONS | {"settings"},
    "operator": OPERATIONS,
    "viewer": set(),
    "other_store_owner": set(),
    "superuser": set(ACTIONS),
}


def _principal(name: str, store, other_store):
    if name == "superuser":
        return make_user(superuser=True)
    if name == "other_store_owner":
        return make_member(other_store, "owner")
    return make_member(store, name)


def snapshot(store) -> dict[str, Any]:
    """Everything a dashboard POST could change in the store."""

    def rows(model, *fields):
        return sorted(model.all_stores.filter(store=store).values_list("pk", *fields))

    return {
        "events": Event.all_stores.filter(store=store).count(),
        "orders": rows(Order, "status", "payment_status", "fulfillment_status"),
        "payments": rows(Payment, "status", "refunded_amount"),
        "fulfillments": rows(Fulfillment, "status"),
        "stock": rows(StockLevel, "on_hand", "reserved"),
        "alerts": rows(Alert, "status", "acknowledged_by", "resolved_by"),
        "settings": Store.objects.get(pk=store.pk).settings,
    }


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("who", sorted(ALLOWED))
def test_dashboard_action_matrix(client, store, other_store, who, action, request, settings):
    spec = ACTIONS[action]
    if spec.gateway:
        settings.GATEWAY_URL = request.getfixturevalue("gateway").url
    target = spec.setup(store)
    client.force_login(_principal(who, store, other_store))
    before = snapshot(store)

    r = client.post(spec.url(target), spec.data(target))

    if action in ALLOWED[who]:
        assert r.status_code == 302, r.content[:300]
        assert spec.done(store, target), f"{who} may {action}, but nothing happened"
        assert snapshot(store)["events"] > before["events"]
    else:
        assert r.status_code == 403, (r.status_code, r.content[:300])
        assert snapshot(store) == before


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_anonymous_is_sent_to_the_login_page_and_changes_nothing(client, store, action, request, settings):
    spec = ACTIONS[action]
    if spec.gateway:
        settings.GATEWAY_URL = request.getfixturevalue("gateway").url
    target = spec.setup(store)
    before = snapshot(store)
    r = client.post(spec.url(target), spec.data(target))
    assert r.status_code == 302 and "/login/" in r["Location"]
    assert snapshot(store) == before
