"""The dashboard pages: server-rendered, session login, thin — each view resolves the store, calls
selectors to read and the owning app's services to act (the same ones the API calls), and renders.

Store: `?store=<slug>` picks it (remembered in the session); otherwise the remembered one, else
the user's first. A store the user may not open → 403; anonymous → the admin login page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from alerts import selectors as alert_selectors
from alerts import services as alert_services
from alerts.models import Alert
from fulfillment import selectors as fulfillment_selectors
from fulfillment import services as fulfillment_services
from fulfillment.models import Fulfillment
from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from orderflow.core.errors import DomainError
from orderflow.core.statemachine import allowed
from orderflow.core.tenancy import Store, actor_name, stores_for_user, use_store
from orders import selectors as order_selectors
from orders import services as order_services
from orders.idempotency import fingerprint
from orders.models import Order
from payments import selectors as payment_selectors
from payments import services as payment_services

from . import selectors, services
from .consumers import SESSION_STORE_KEY
from .forms import TEST_CARDS, PackForm, RestockForm, StoreSwitchesForm, TestOrderForm

# ----------------------------------------------------------------------------- plumbing


def resolve_store(request: HttpRequest) -> Store:
    stores = stores_for_user(request.user)
    slug = request.GET.get("store") or request.POST.get("store")
    if slug:
        store = stores.filter(slug=slug).first()
        if store is None:
            raise PermissionDenied("You may not open that store.")
    else:
        remembered = request.session.get(SESSION_STORE_KEY)
        store = (stores.filter(slug=remembered).first() if remembered else None) or stores.order_by(
            "slug"
        ).first()
        if store is None:
            raise PermissionDenied("You are not a member of any store.")
    if request.session.get(SESSION_STORE_KEY) != store.slug:
        request.session[SESSION_STORE_KEY] = store.slug
    return store


def page(view: Callable | None = None, *, superuser_only: bool = False):
    """Login, store resolution and the store context around a page view."""

    def decorate(func: Callable) -> Callable:
        @wraps(func)
        @login_required
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if superuser_only and not request.user.is_superuser:
                raise PermissionDenied("Platform staff only.")
            store = resolve_store(request)
            request.store = store
            with use_store(store):
                try:
                    return func(request, *args, **kwargs)
                except DomainError as exc:
                    if exc.status == 404:
                        raise Http404(exc.message)
                    raise

        return wrapper

    return decorate(view) if view is not None else decorate


def _render(request: HttpRequest, template: str, nav: str, data: dict | None = None, **context: Any):
    store: Store = request.store
    stores = list(stores_for_user(request.user).order_by("slug").values_list("slug", "name"))
    context.update(
        store=store,
        stores=stores,
        nav=nav,
        page_data={"store": store.slug, "currency": store.currency, "nav": nav, **(data or {})},
    )
    return render(request, template, context)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    return redirect(f"{fallback}?store={request.store.slug}")


def _act(request: HttpRequest, func: Callable[[], Any], success: str | None) -> Any:
    """Run an operator action through its service; a refusal becomes a message, never a 500.
    Returns the service's result, or None when it refused."""
    try:
        result = func()
    except DomainError as exc:
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.fields or {}).items())
        messages.error(request, f"{exc.message} {detail}".strip())
        return None
    if success:
        messages.success(request, success)
    return result


# ------------------------------------------------------------------------------ overview


@page
def overview(request: HttpRequest) -> HttpResponse:
    store = request.store
    products = [
        p for p in inventory_selectors.products(store).select_related("stock").filter(active=True)[:200]
    ]
    products = [p for p in products if hasattr(p, "stock")]
    form = TestOrderForm(request.POST or None, products=products)
    if request.method == "POST":
        if form.is_valid():
            order = _place_test_order(request, form.cleaned_data)
            if order is not None:
                messages.success(request, f"Test order #{order.number} placed — watch it move.")
                return redirect(f"{reverse('dashboard:overview')}?store={store.slug}&placed={order.pk}")
        else:
            messages.error(request, "Check the test order form.")
    stats = selectors.stats(store)
    return _render(
        request,
        "dashboard/overview.html",
        "overview",
        data={
            "stats": stats,
            "series": selectors.minute_series(store),
            "events": selectors.recent_events(store, 40),
            "placed": request.GET.get("placed"),
        },
        stats=stats,
        alerts=alert_selectors.active_alerts(store)[:10],
        form=form,
        test_cards=TEST_CARDS,
    )


def _place_test_order(request: HttpRequest, data: dict[str, Any]) -> Order | None:
    """The same service as `POST /api/v1/orders`, with a fresh idempotency key per click."""
    email = data.get("email") or f"test+{uuid.uuid4().hex[:8]}@example.com"
    payload = {
        "customer": {"email": email, "name": "Test Shopper"},
        "items": [{"sku": data["sku"], "quantity": data["quantity"]}],
        "shipping_address": {
            "line1": "1 Test Street",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "payment": {
            "card_number": data["card"],
            "exp_month": 12,
            "exp_year": timezone.now().year + 3,
            "cvc": "123",
        },
        "currency": request.store.currency,
        "metadata": {"source": "dashboard"},
    }
    return _act(
        request,
        lambda: order_services.place_order(
            store=request.store,
            payload=payload,
            idempotency_key=f"dashboard-{uuid.uuid4()}",
            request_fingerprint=fingerprint(payload),
            actor=actor_name(request),
            client_ip=request.META.get("REMOTE_ADDR"),
        ),
        None,
    )


@page
def events_since(request: HttpRequest) -> JsonResponse:
    """Events after `?after=<id>` (at most 200): what a page missed while its socket was down."""
    try:
        after = int(request.GET.get("after", ""))
    except ValueError:
        after = None
    return JsonResponse({"events": selectors.recent_events(request.store, 200, after_id=after)})


# -------------------------------------------------------------------------------- orders


@page
def order_list(request: HttpRequest) -> HttpResponse:
    store = request.store
    f = {k: request.GET.get(k, "").strip() for k in ("status", "search", "created_after", "created_before")}
    try:
        qs = order_selectors.order_list(store, **{k: v or None for k, v in f.items()})
    except DomainError as exc:
        messages.error(request, f"{exc.message} {exc.fields or ''}")
        qs = order_selectors.order_list(store)
    paginator = Paginator(qs, 50)
    pg = paginator.get_page(request.GET.get("page"))
    query = "&".join(f"{k}={v}" for k, v in f.items() if v)
    return _render(
        request,
        "dashboard/orders.html",
        "orders",
        page_obj=pg,
        filters=f,
        query=query,
        statuses=Order.Status.choices,
    )


@page
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    store = request.store
    order = order_selectors.get_order(store, order_id)
    payment = payment_selectors.payment_for_order(store, order.pk)
    attempts = list(payment_selectors.attempts(store, payment)) if payment else []
    fulfillment = fulfillment_selectors.list_fulfillments(store).filter(order=order).first()
    shipment = fulfillment_selectors.shipment_for_order(store, order.pk)
    events = list(selectors.order_events(store, order.pk))
    timeline = []
    for i, ev in enumerate(events):
        since_prev = (ev.created_at - events[i - 1].created_at).total_seconds() if i else None
        since_start = (ev.created_at - events[0].created_at).total_seconds()
        timeline.append({"event": ev, "since_prev": since_prev, "since_start": since_start})
    actions = _order_actions(order, fulfillment)
    return _render(
        request,
        "dashboard/order_detail.html",
        "orders",
        data={"order_id": str(order.pk), "topics": [e.topic for e in events]},
        order=order,
        items=list(order.items.all()),
        payment=payment,
        attempts=attempts,
        fulfillment=fulfillment,
        shipment=shipment,
        timeline=timeline,
        movements=inventory_selectors.order_movements(store, order.pk),
        actions=actions,
        pack_form=PackForm(),
        carriers=sorted(_carriers()),
    )


def _carriers() -> list[str]:
    return list(settings.CARRIER_SECRETS)


def _order_actions(order: Order, fulfillment: Fulfillment | None) -> dict[str, bool]:
    fs = fulfillment.status if fulfillment else None
    F = Fulfillment.Status
    return {
        "approve": order.status == Order.Status.FRAUD_REVIEW,
        "reject": order.status == Order.Status.FRAUD_REVIEW,
        "cancel": allowed(order, Order.Status.CANCELLED),
        "pick": fs in (F.PENDING, F.PICKING),
        "pack": fs == F.PICKING,
        "ready": fs == F.PACKED,
        "ship": fs == F.READY_TO_SHIP,
    }


@page
@require_POST
def order_action(request: HttpRequest, order_id: str, action: str) -> HttpResponse:
    store, actor = request.store, actor_name(request)
    order = order_selectors.get_order(store, order_id)
    fulfillment = fulfillment_selectors.list_fulfillments(store).filter(order=order).first()
    reason = request.POST.get("reason", "").strip()[:200]

    def need_fulfillment() -> Fulfillment:
        if fulfillment is None:
            raise DomainError("This order has no fulfillment yet.", code="invalid_transition", status=409)
        return fulfillment

    def do_pack():
        form = PackForm(request.POST)
        if not form.is_valid():
            raise DomainError("Packages and weight must be positive whole numbers.", status=400)
        fulfillment_services.pack(
            store=store, fulfillment=need_fulfillment(), actor=actor, **form.cleaned_data
        )

    def do_ship():
        carrier = request.POST.get("carrier", "")
        fulfillment_services.ship(store=store, fulfillment=need_fulfillment(), carrier=carrier, actor=actor)

    todo: dict[str, tuple[Callable[[], Any], str]] = {
        "approve": (
            lambda: payment_services.approve_order(store=store, order_id=order.pk, actor=actor),
            "Approved: on to payment.",
        ),
        "reject": (
            lambda: payment_services.reject_order(store=store, order_id=order.pk, actor=actor, reason=reason),
            "Rejected.",
        ),
        "cancel": (
            lambda: order_services.cancel_order(
                store=store, order=order, actor=actor, reason=reason or "cancelled by operator"
            ),
            "Cancelled.",
        ),
        "pick": (
            lambda: fulfillment_services.pick(store=store, fulfillment=need_fulfillment(), actor=actor),
            "Picked.",
        ),
        "pack": (do_pack, "Packed."),
        "ready": (
            lambda: fulfillment_services.mark_ready(store=store, fulfillment=need_fulfillment(), actor=actor),
            "Ready to ship.",
        ),
        "ship": (do_ship, "Shipped."),
    }
    if action not in todo:
        raise Http404("No such action.")
    func, success = todo[action]
    _act(request, func, success)
    return _back(request, reverse("dashboard:order", args=[order.pk]))


# ----------------------------------------------------------------------------- inventory


@page
def inventory(request: HttpRequest) -> HttpResponse:
    store = request.store
    if request.method == "POST":
        form = RestockForm(request.POST)
        if form.is_valid():
            d = form.cleaned_data
            _act(
                request,
                lambda: inventory_services.restock(
                    store=store,
                    sku=d["sku"],
                    quantity=d["quantity"],
                    note=d["note"],
                    actor=actor_name(request),
                ),
                f"Restocked {d['quantity']} × {d['sku']}.",
            )
        else:
            messages.error(request, "Restock needs a SKU and a quantity of at least 1.")
        return _back(request, reverse("dashboard:inventory"))
    show = request.GET.get("show", "")
    levels = inventory_selectors.stock_levels(store, low=True if show == "low" else None)
    return _render(
        request,
        "dashboard/inventory.html",
        "inventory",
        levels=levels[:500],
        show=show,
        low_count=inventory_selectors.low_stock_count(store),
    )


# -------------------------------------------------------------------------------- alerts


@page
def alert_list(request: HttpRequest) -> HttpResponse:
    store = request.store
    f = {k: request.GET.get(k, "").strip() for k in ("status", "kind", "severity")}
    qs = alert_selectors.alerts(store, **{k: v or None for k, v in f.items()})
    pg = Paginator(qs, 50).get_page(request.GET.get("page"))
    return _render(
        request,
        "dashboard/alerts.html",
        "alerts",
        page_obj=pg,
        filters=f,
        statuses=Alert.Status.choices,
        kinds=Alert.Kind.choices,
        severities=Alert.Severity.choices,
    )


@page
@require_POST
def alert_action(request: HttpRequest, alert_id: int, action: str) -> HttpResponse:
    store, actor = request.store, actor_name(request)
    alert = alert_selectors.get_alert(store, alert_id)
    if action == "acknowledge":
        _act(
            request,
            lambda: alert_services.acknowledge(store=store, alert=alert, actor=actor),
            "Acknowledged.",
        )
    elif action == "resolve":
        _act(request, lambda: alert_services.resolve(store=store, alert=alert, actor=actor), "Resolved.")
    else:
        raise Http404("No such action.")
    if request.headers.get("Accept", "").startswith("application/json"):
        fresh = alert_selectors.get_alert(store, alert_id)
        list(messages.get_messages(request))  # consumed: the page updates itself
        return JsonResponse({"id": fresh.pk, "status": fresh.status})
    return _back(request, request.POST.get("next") or reverse("dashboard:alerts"))


# ------------------------------------------------------------------------------ workflow


@page
def workflow(request: HttpRequest) -> HttpResponse:
    store = request.store
    order_id = request.GET.get("order", "").strip()
    path = None
    if order_id:
        order = order_selectors.get_order(store, order_id)
        path = {
            "order_id": str(order.pk),
            "number": order.number,
            "status": order.status,
            "topics": list(selectors.order_events(store, order.pk).values_list("topic", flat=True)),
        }
    return _render(
        request,
        "dashboard/workflow.html",
        "workflow",
        data={
            "graph": selectors.workflow_graph(),
            "counts": selectors.topic_counts(store, timezone.now() - timedelta(hours=24)),
            "path": path,
        },
        recent=selectors.recent_orders(store, 20),
        path=path,
    )


# ----------------------------------------------------------------------------- integrity


@page
def integrity(request: HttpRequest) -> HttpResponse:
    data = selectors.integrity(request.store)
    if request.GET.get("format") == "json":
        return JsonResponse(data, json_dumps_params={"default": str})
    return _render(request, "dashboard/integrity.html", "integrity", data={"integrity": data}, integrity=data)


# -------------------------------------------------------------------------------- stores


@page(superuser_only=True)
def stores(request: HttpRequest) -> HttpResponse:
    return _render(request, "dashboard/stores.html", "stores", rows=selectors.stores_overview())


@page(superuser_only=True)
@require_POST
def store_switches(request: HttpRequest, slug: str) -> HttpResponse:
    target = Store.objects.filter(slug=slug).first()
    if target is None:
        raise Http404("No such store.")
    form = StoreSwitchesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The review threshold must be a whole number from 0 to 100.")
    else:
        _act(
            request,
            lambda: services.update_store_switches(
                store=target, actor=actor_name(request), **form.cleaned_data
            ),
            f"Switches of {target.slug} saved.",
        )
    return _back(request, reverse("dashboard:stores"))
