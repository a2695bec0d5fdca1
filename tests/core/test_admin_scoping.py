"""The admin as each role of store A sees it: no row of store B anywhere, no action on it, and only
what the role's permissions (orderflow/core/permissions.py) allow in store A.

The matrix iterates `admin.site._registry`, so a newly registered model or action is covered (or
fails the coverage tests) without anyone remembering to add it here.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from alerts import services as alert_services
from alerts.models import Alert, WebhookDelivery, WebhookEndpoint
from fulfillment.models import Fulfillment, Shipment
from inventory.models import Product, StockLevel
from orderflow.core.admin_scoping import PlatformOnlyAdmin, StoreScopedAdmin, StoreScopedInline
from orderflow.core.events import Event
from orderflow.core.permissions import ROLE_PERMS
from orderflow.core.tenancy import ApiKey, Store, StoreMembership, create_api_key, find_api_key
from orders.models import IdempotencyRecord, Order
from payments.models import Payment, PaymentAttempt, Refund
from tests.factories import make_product, make_store, make_user
from tests.fulfillment.helpers import make_paid_order, shipment_in, started, walk_to

pytestmark = pytest.mark.django_db

Role = StoreMembership.Role
ROLES = [Role.OWNER, Role.OPERATOR, Role.VIEWER]
REGISTRY = admin.site._registry


def member(store, role):
    """A staff user (no Django model permission at all) holding `role` in `store`."""
    user = make_user()
    StoreMembership.objects.create(store=store, user=user, role=role)
    return user


def url(model, suffix=""):
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{suffix}"


def is_store_scoped(model) -> bool:
    if model is Store:
        return True
    return any(getattr(f, "related_model", None) is Store and f.name == "store" for f in model._meta.fields)


# ---------------------------------------------------------------------------- the data


def make_payment(store, status=Payment.Status.SUCCEEDED) -> Payment:
    order = make_paid_order(store)
    payment = Payment.all_stores.create(
        store=store, order=order, amount=order.total, currency=order.currency, status=status,
        idempotency_key=f"pay-{uuid.uuid4()}", gateway_charge_id="ch_test", attempts=1,
    )  # fmt: skip
    PaymentAttempt.all_stores.create(
        store=store, payment=payment, number=1, started_at=timezone.now(), outcome="succeeded"
    )
    return payment


def make_endpoint(store) -> WebhookEndpoint:
    return WebhookEndpoint.all_stores.create(store=store, url="https://hooks.example.com/x", topics=["*"])


def make_delivery(store) -> WebhookDelivery:
    endpoint = make_endpoint(store)
    event = Event.all_stores.create(store=store, topic="order.created", data={})
    return WebhookDelivery.all_stores.create(
        store=store, endpoint=endpoint, event=event, topic="order.created", status="failed", attempts=3
    )


def make_alert(store) -> Alert:
    return alert_services.raise_alert(
        store=store, kind="low_stock", subject=f"sku:{uuid.uuid4().hex[:6]}", message="low"
    )


def world(store) -> None:
    """At least one row of every store-scoped model that has an admin (and the inlines' rows)."""
    make_product(store)  # product, stock level, ledger row
    walk_to(store, Fulfillment.Status.SHIPPED)  # order, items, fulfillment, lines, shipment, events
    payment = make_payment(store)  # payment, attempt
    Refund.all_stores.create(
        store=store, payment=payment, order=payment.order, amount="1.00", currency=payment.currency,
        idempotency_key=f"refund-{uuid.uuid4()}",
    )  # fmt: skip
    IdempotencyRecord.all_stores.create(store=store, key=f"idem-{uuid.uuid4()}", fingerprint="f" * 64)
    make_alert(store)
    make_delivery(store)  # endpoint, event, delivery
    create_api_key(store=store, name="world")
    member(store, Role.VIEWER)


# Each action run in the matrix: the row it acts on, built in the state where the action does
# something. Every action a store member can be offered must be here (test_every_action_is_covered).
ACTIONS = {
    (ApiKey, "revoke"): lambda s: create_api_key(store=s)[0],
    (ApiKey, "delete_selected"): lambda s: create_api_key(store=s)[0],
    (StoreMembership, "delete_selected"): lambda s: StoreMembership.objects.get(
        user=member(s, Role.VIEWER), store=s
    ),
    (Product, "restock_selected"): lambda s: make_product(s, stock=2),
    (StockLevel, "restock_selected"): lambda s: make_product(s, stock=2).stock,
    (Order, "cancel_selected"): make_paid_order,
    (Payment, "refund_selected"): make_payment,
    (Fulfillment, "pick_all"): started,
    (Fulfillment, "pack_one_parcel"): lambda s: walk_to(s, Fulfillment.Status.PICKING),
    (Fulfillment, "mark_ready"): lambda s: walk_to(s, Fulfillment.Status.PACKED),
    (Fulfillment, "ship_default_carrier"): lambda s: walk_to(s, Fulfillment.Status.READY_TO_SHIP),
    (Shipment, "advance"): lambda s: shipment_in(s, Shipment.Status.LABEL_CREATED),
    (Shipment, "report_exception"): lambda s: shipment_in(s, Shipment.Status.IN_TRANSIT),
    (Shipment, "mark_returned"): lambda s: shipment_in(s, Shipment.Status.EXCEPTION),
    (Alert, "acknowledge"): make_alert,
    (Alert, "resolve"): make_alert,
    (WebhookEndpoint, "delete_selected"): make_endpoint,
    (WebhookDelivery, "redeliver"): make_delivery,
    (WebhookDelivery, "delete_selected"): make_delivery,
}
ACTION_IDS = [f"{m._meta.model_name}.{a}" for m, a in ACTIONS]


def _drain_queued_refunds(store) -> list[str]:
    """Refund tasks queued for `store` in the broker (taken off it, so no other test sees them)."""
    r = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    found = []
    for raw in r.lrange("payments", 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        if message["headers"].get("task") == "payments.refund_payment" and args[1] == store.pk:
            found.append(args[0])
            r.lrem("payments", 1, raw)
    return found


def snapshot(store):
    """Every row the store owns, in every table, plus the refunds queued for it."""
    rows = {}
    for model in apps.get_models():
        if model is not Store and is_store_scoped(model):
            rows[model._meta.label] = list(model._default_manager.filter(store=store).order_by("pk").values())
    rows["refunds queued"] = _drain_queued_refunds(store)
    return rows


def post_action(client, model, action, objs, **extra):
    """The action's POST, with everything a two-step action needs to go through at once."""
    data = {"action": action, "_selected_action": [str(o.pk) for o in objs], "post": "yes", "apply": "1"}
    data.update({"quantity": 3, "note": "matrix"}, **extra)
    return client.post(url(model), data)


def offered_actions(page) -> set[str]:
    if page.status_code != 200 or page.context["action_form"] is None:
        return set()
    return {name for name, _ in page.context["action_form"].fields["action"].choices if name}


def action_perms(model, action):
    model_admin = REGISTRY[model]
    func = dict((name, f) for f, name, _ in model_admin._get_base_actions())[action]
    return model_admin._action_perms(func)


def role_may(role, model, action) -> bool:
    return all(perm in ROLE_PERMS[role] for perm in action_perms(model, action))


# ------------------------------------------------------------------------- structure


def test_every_admin_is_scoped_or_platform_only():
    for model, model_admin in REGISTRY.items():
        if isinstance(model_admin, PlatformOnlyAdmin):
            continue
        assert is_store_scoped(model), f"{model} is not a store's row: its admin must be PlatformOnlyAdmin"
        assert isinstance(model_admin, StoreScopedAdmin), model
        for inline in model_admin.inlines:
            assert issubclass(inline, StoreScopedInline), inline
    for label in ("core.Store", "auth.User", "auth.Group", "django_celery_beat.PeriodicTask"):
        assert isinstance(REGISTRY[apps.get_model(label)], PlatformOnlyAdmin), label


def test_every_action_declares_a_permission_of_the_policy():
    """(A platform page's actions, such as the beat schedule's, are platform staff's with the page.)"""
    for model_admin in REGISTRY.values():
        if isinstance(model_admin, PlatformOnlyAdmin):
            continue
        for func, name, _ in model_admin._get_base_actions():
            assert getattr(func, "allowed_permissions", None), f"{model_admin}.{name} declares nothing"
            model_admin._action_perms(func)  # every name maps to a Perm (KeyError otherwise)


def test_every_action_is_covered_by_the_matrix(store):
    """An action a store owner (who holds every permission) is offered must be in ACTIONS."""
    owner = member(store, Role.OWNER)
    request = RequestFactory().post("/")
    request.user = owner
    for model, model_admin in REGISTRY.items():
        for name in model_admin.get_actions(request):
            assert (model, name) in ACTIONS, f"add {model.__name__}.{name} to ACTIONS"


# ------------------------------------------------------------------------ the rows


def test_no_changelist_shows_a_row_of_another_store(client, store, other_store):
    world(store)
    world(other_store)
    for role in ROLES:
        client.force_login(member(store, role))
        _sees_nothing_of(client, other_store, role)


def _sees_nothing_of(client, other_store, role):
    for model, model_admin in REGISTRY.items():
        page = client.get(url(model))
        if isinstance(model_admin, PlatformOnlyAdmin):
            assert page.status_code == 403, model
            continue
        theirs = model._default_manager.filter(store=other_store)
        assert theirs.exists(), f"world() builds no {model.__name__} in store B"
        if page.status_code == 403:  # the role does not see this model (keys, members)
            assert not model_admin.has_view_permission(page.wsgi_request), model
            continue
        assert page.status_code == 200, model
        shown = {row.pk for row in page.context["cl"].result_list}
        assert shown, f"{role} of A sees no {model.__name__} of A"
        assert not shown & set(theirs.values_list("pk", flat=True)), model
        for row in theirs[:1]:
            for suffix in ("change/", "delete/", "history/"):
                assert client.get(url(model, f"{row.pk}/{suffix}")).status_code in (403, 404), (model, suffix)


def test_superuser_sees_every_store(client, store, other_store):
    world(store)
    world(other_store)
    client.force_login(make_user(superuser=True))
    for model in REGISTRY:
        page = client.get(url(model))
        assert page.status_code == 200, model
        if is_store_scoped(model) and model is not Store:
            shown = {row.store_id for row in page.context["cl"].result_list}
            assert {store.pk, other_store.pk} <= shown, model


def test_django_model_permissions_open_nothing(client, store, other_store):
    """A staff user given every Django model permission but no store role sees no store's rows and
    no platform page: the policy, not auth's permission table, decides."""
    world(other_store)
    user = make_user()
    user.user_permissions.add(*Permission.objects.all())
    client.force_login(user)
    for model in REGISTRY:
        assert client.get(url(model)).status_code == 403, model
    index = client.get("/admin/")
    assert index.status_code == 200 and not index.context["app_list"]


# ---------------------------------------------------------------------- the actions


@pytest.mark.parametrize(("model", "action"), ACTIONS, ids=ACTION_IDS)
def test_an_action_on_another_stores_rows_changes_nothing(client, store, other_store, model, action):
    theirs = ACTIONS[model, action](other_store)
    client.force_login(member(store, Role.OWNER))  # every permission, but in store A only
    before = snapshot(other_store)
    post_action(client, model, action, [theirs])
    post_action(client, model, action, [theirs], select_across="1", index="0")
    assert snapshot(other_store) == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("model", "action"), ACTIONS, ids=ACTION_IDS)
def test_an_action_runs_for_the_roles_that_hold_its_permission(client, store, model, action, role):
    mine = ACTIONS[model, action](store)
    client.force_login(member(store, role))
    offered = action in offered_actions(client.get(url(model)))
    before = snapshot(store)
    post_action(client, model, action, [mine])
    changed = snapshot(store) != before
    allowed = role_may(role, model, action)
    assert (offered, changed) == (allowed, allowed), f"{role} may {'' if allowed else 'not '}{action}"


def test_a_viewer_is_offered_no_action_at_all(client, store):
    world(store)
    client.force_login(member(store, Role.VIEWER))
    for model in REGISTRY:
        assert not offered_actions(client.get(url(model))), model


def test_an_action_runs_only_in_the_stores_where_the_user_holds_its_permission(client, store, other_store):
    """Operator of A and viewer of B: the cancel action is offered (for A), and a POST selecting
    both stores' orders cancels A's only."""
    user = member(store, Role.OPERATOR)
    StoreMembership.objects.create(store=other_store, user=user, role=Role.VIEWER)
    mine, theirs = make_paid_order(store), make_paid_order(other_store)
    client.force_login(user)
    assert {o.pk for o in client.get(url(Order)).context["cl"].result_list} == {mine.pk, theirs.pk}
    post_action(client, Order, "cancel_selected", [mine, theirs])
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.status, theirs.status) == ("cancelled", "paid")


# ---------------------------------------------------------- the reproduced hole, keys, members


def test_seeded_operator_can_neither_see_nor_revoke_another_stores_key(client, api_b, other_store):
    """The hole of issue #14: demo-books-operator opened /admin/core/apikey/, saw every store's
    keys and revoked another store's key (its checkout then got 401)."""
    call_command("seed", stdout=open("/dev/null", "w"))  # noqa: SIM115
    other_seeded = ApiKey.objects.exclude(store__slug="demo-books").get(store__slug__startswith="demo-")
    client.force_login(StoreMembership.objects.get(user__username="demo-books-operator").user)
    assert client.get("/admin/core/apikey/").status_code == 403
    for key in (other_seeded, ApiKey.objects.get(store=other_store)):
        post_action(client, ApiKey, "revoke", [key])
        key.refresh_from_db()
        assert key.is_active
    assert api_b.get("/api/v1/products").status_code == 200
    for page in ("/admin/core/store/", "/admin/core/storemembership/", "/admin/auth/user/"):
        assert client.get(page).status_code == 403, page
    events = client.get("/admin/core/event/")
    assert events.status_code == 200
    assert {e.store.slug for e in events.context["cl"].result_list} <= {"demo-books"}


def test_an_owner_creates_a_read_only_key_for_their_store_only(client, store, other_store):
    client.force_login(member(store, Role.OWNER))
    form = client.get(url(ApiKey, "add/"))
    assert list(form.context["adminform"].form.fields["store"].queryset) == [store]
    refused = client.post(url(ApiKey, "add/"), {"store": other_store.pk, "name": "x", "scope": "full"})
    assert refused.status_code == 200 and not ApiKey.objects.filter(store=other_store).exists()
    r = client.post(url(ApiKey, "add/"), {"store": store.pk, "name": "reporting", "scope": "read_only"})
    assert r.status_code == 302
    key = ApiKey.objects.get(store=store, name="reporting")
    assert key.scope == ApiKey.Scope.READ_ONLY
    shown = [str(m) for m in r.wsgi_request._messages]
    raw = next(word for m in shown for word in m.split() if word.startswith("of_"))
    assert find_api_key(raw) == key
    # the scope is never widened and a revoked key stays revoked
    post_action(client, ApiKey, "revoke", [key])
    client.post(url(ApiKey, f"{key.pk}/change/"), {"name": "renamed", "scope": "full", "revoked_at": ""})
    key.refresh_from_db()
    assert (key.name, key.scope, key.is_active) == ("renamed", ApiKey.Scope.READ_ONLY, False)


def test_an_owner_adds_members_by_exact_username_and_never_sees_the_user_list(client, store, other_store):
    owner = member(store, Role.OWNER)
    stranger = make_user("someone-elsewhere", store=other_store)
    client.force_login(owner)
    page = client.get(url(StoreMembership, "add/"))
    assert page.status_code == 200 and b"someone-elsewhere" not in page.content
    lookup = client.get(
        "/admin/autocomplete/",
        {"app_label": "core", "model_name": "storemembership", "field_name": "user", "term": "some"},
    )
    assert lookup.status_code == 403
    assert client.get("/admin/auth/user/").status_code == 403
    missing = client.post(
        url(StoreMembership, "add/"), {"username": "nobody", "store": store.pk, "role": "viewer"}
    )
    assert missing.status_code == 200 and b"No active user" in missing.content
    make_user("fresh")
    elsewhere = client.post(
        url(StoreMembership, "add/"), {"username": "fresh", "store": other_store.pk, "role": "viewer"}
    )
    assert elsewhere.status_code == 200 and not StoreMembership.objects.filter(user__username="fresh")
    r = client.post(
        url(StoreMembership, "add/"), {"username": "someone-elsewhere", "store": store.pk, "role": "viewer"}
    )
    assert r.status_code == 302
    assert StoreMembership.objects.get(store=store, user=stranger).role == Role.VIEWER
    assert StoreMembership.objects.filter(store=other_store).count() == 1  # untouched
    listing = client.get(url(StoreMembership))
    assert {m.store_id for m in listing.context["cl"].result_list} == {store.pk}


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_only_owners_see_keys_and_members(client, store, role):
    create_api_key(store=store)
    client.force_login(member(store, role))
    for model in (ApiKey, StoreMembership):
        assert client.get(url(model)).status_code == 403
    index = client.get("/admin/")
    names = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert not names & {"ApiKey", "StoreMembership", "Store", "User", "Group"}
    assert {"Order", "Event", "Product"} <= names


def test_foreign_key_and_filter_choices_are_the_users_stores(client, store, other_store):
    mine, _ = make_product(store, "MINE"), make_product(other_store, "THEIRS")
    operator = member(store, Role.OPERATOR)
    request = RequestFactory().get("/")
    request.user = operator
    field = REGISTRY[StockLevel].formfield_for_foreignkey(StockLevel._meta.get_field("product"), request)
    assert list(field.queryset) == [mine]
    client.force_login(operator)
    page = client.get(url(Product))
    assert b"store-a" in page.content and b"store-b" not in page.content  # the store filter's choices
    assert client.get(url(WebhookEndpoint, "add/")).status_code == 403  # operators manage no webhooks
    client.force_login(member(store, Role.OWNER))
    form = client.get(url(WebhookEndpoint, "add/")).context["adminform"].form
    assert list(form.fields["store"].queryset) == [store]
    refused = client.post(
        url(WebhookEndpoint, "add/"),
        {"store": other_store.pk, "url": "https://hooks.example.com/x", "topics": '["*"]', "active": "on"},
    )
    assert refused.status_code == 200 and not WebhookEndpoint.all_stores.exists()


def test_a_second_store_of_the_same_user_is_visible_with_its_own_rights(client, store):
    """Owner of A, viewer of C: C's keys stay hidden, A's are shown."""
    third = make_store("store-c")
    user = member(store, Role.OWNER)
    StoreMembership.objects.create(store=third, user=user, role=Role.VIEWER)
    mine, theirs = create_api_key(store=store)[0], create_api_key(store=third)[0]
    client.force_login(user)
    shown = {k.pk for k in client.get(url(ApiKey)).context["cl"].result_list}
    assert shown == {mine.pk}
    assert client.get(url(ApiKey, f"{theirs.pk}/change/")).status_code == 404
