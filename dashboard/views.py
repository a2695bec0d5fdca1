"""The dashboard pages: server-rendered, session login, thin — each view resolves the store, calls
selectors to read and the owning app's services to act (the same ones the API calls), and renders.

Store: `?store=<slug>` picks it (remembered in the session); otherwise the remembered one, else
the user's first. A store the user may not open → 403; anonymous → the admin login page.

Who may do what is the permission policy's (`orderflow/core/permissions.py`): every page declares
the permission its POST needs (`@page(perm=...)`), the principal's permissions in the store are
looked up once per request (`request.store_perms`), and a refusal is a 403 before anything runs.
The templates get the same set (`store_perms`) only to hide what would be refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
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
from fraud import services as fraud_services
from fulfillment import selectors as fulfillment_selectors
from fulfillment import services as fulfillment_services
from inventory import selectors as inventory_selectors
from inventory import services as inventory_services
from orderflow.core.errors import DomainError, ValidationFailed
from orderflow.core.permissions import Perm, can, perms_in_store
from orderflow.core.store_settings import (
    store_settings,
    store_timezone,
    update_store_settings,
    validate_store_settings,
    zone_names,
)
from orderflow.core.tenancy import Store, actor_name, stores_for_user, use_store
from orders import selectors as order_selectors
from orders import services as order_services
from orders.idempotency import fingerprint
from payments import refunds as payment_refunds
from payments import retry as payment_retry
from payments import selectors as payment_selectors
from payments import services as payment_services

from . import selectors
from . import timeline as order_timeline
from .consumers import SESSION_STORE_KEY
from .forms import (
    STORE_SWITCHES,
    TEST_CARDS,
    PackForm,
    RefundForm,
    RestockForm,
    TestOrderForm,
    parse_settings_form,
    settings_form_fields,
)

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


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")

PermSpec = Perm | Callable[..., Perm] | None


def page(
    view: Callable | None = None,
    *,
    perm: PermSpec = None,
    read: Perm = Perm.VIEW,
    superuser_only: bool = False,
):
    """Login, store resolution, the principal's permissions and the store context around a page.

    Every request needs `read` in the store (VIEW: every member has it); any other method also
    needs `perm` — a Perm, or a function of the URL's arguments for a view whose permission
    depends on them (the order actions). A write on a page that declares no `perm` is refused
    (fail closed)."""

    def decorate(func: Callable) -> Callable:
        @wraps(func)
        @login_required
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if superuser_only and not request.user.is_superuser:
                raise PermissionDenied("Platform staff only.")
            store = resolve_store(request)
            request.store = store
            request.store_perms = perms_in_store(request.user, store)
            require_perm(request, read)
            if request.method not in SAFE_METHODS:
                needed = perm(**kwargs) if callable(perm) and not isinstance(perm, Perm) else perm
                if needed is None:
                    raise PermissionDenied("This page declares no permission for changes.")
                require_perm(request, needed)
            with use_store(store), timezone.override(store_timezone(store)):
                try:
                    return func(request, *args, **kwargs)
                except DomainError as exc:
                    if exc.status == 404:
                        raise Http404(exc.message)
                    raise

        return wrapper

    return decorate(view) if view is not None else decorate


def require_perm(request: HttpRequest, perm: Perm, store: Store | None = None) -> None:
    """The policy's answer for the request's user, as Django's 403 (the pages' refusal)."""
    target = request.store if store is None else store
    held = request.store_perms if target == request.store else None
    if not can(request.user, target, perm, held=held):
        raise PermissionDenied(f"Your role in this store does not allow this ({perm.value}).")


def _render(request: HttpRequest, template: str, nav: str, data: dict | None = None, **context: Any):
    store: Store = request.store
    stores = list(stores_for_user(request.user).order_by("slug").values_list("slug", "name"))
    held = sorted(p.value for p in request.store_perms)
    context.update(
        store=store,
        stores=stores,
        nav=nav,
        store_perms=held,
        store_tz=str(timezone.get_current_timezone()),
        page_data={
            "store": store.slug,
            "currency": store.currency,
            "tz": str(timezone.get_current_timezone()),
            "nav": nav,
            "perms": held,
            **(data or {}),
        },
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


@page(perm=Perm.PLACE_ORDERS)
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


def _place_test_order(request: HttpRequest, data: dict[str, Any]) -> Any:
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
        statuses=order_selectors.status_choices(),
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
        timeline.append(
            {
                "event": ev,
                "sentence": order_timeline.sentence(ev.topic, ev.data, order),
                "since_prev": since_prev,
                "since_start": since_start,
            }
        )
    actions = _order_actions(request, order, fulfillment)
    items = list(order.items.all())
    left = payment_refunds.refundable_quantities(store, order) if actions["refund"] else {}
    for item in items:
        item.refundable = left.get(item.pk, 0)
    return _render(
        request,
        "dashboard/order_detail.html",
        "orders",
        data={"order_id": str(order.pk), "topics": [e.topic for e in events]},
        order=order,
        items=items,
        payment=payment,
        refunds=payment_refunds.refunds_for_order(store, order.pk),
        refundable_amount=payment_refunds.refundable_amount(payment) if payment else None,
        waiting=payment_selectors.waiting_for_gateway(payment),
        attempts=attempts,
        fulfillment=fulfillment,
        shipment=shipment,
        timeline=timeline,
        stepper=order_timeline.stepper(order, [e.topic for e in events]),
        movements=inventory_selectors.order_movements(store, order.pk),
        actions=actions,
        pack_form=PackForm(),
        carriers=sorted(_carriers()),
    )


def _carriers() -> list[str]:
    return list(settings.CARRIER_SECRETS)


@dataclass
class _OrderContext:
    """What an order action works on: the page's request, the order and its fulfillment."""

    request: HttpRequest
    order: Any  # orders' Order
    fulfillment: Any  # fulfillment's Fulfillment, or None before the order is paid

    @property
    def store(self) -> Store:
        return self.request.store

    @property
    def actor(self) -> str:
        return actor_name(self.request)

    @property
    def reason(self) -> str:
        return self.request.POST.get("reason", "").strip()[:200]

    def need_fulfillment(self) -> Any:
        if self.fulfillment is None:
            raise DomainError("This order has no fulfillment yet.", code="invalid_transition", status=409)
        return self.fulfillment


def _pack(c: _OrderContext) -> None:
    form = PackForm(c.request.POST)
    if not form.is_valid():
        raise DomainError("Packages and weight must be positive whole numbers.", status=400)
    fulfillment_services.pack(
        store=c.store, fulfillment=c.need_fulfillment(), actor=c.actor, **form.cleaned_data
    )


def _refund(c: _OrderContext) -> None:
    """An amount, or per-line quantities (`qty_<line id>`), with the restock box."""
    form = RefundForm(c.request.POST)
    if not form.is_valid():
        raise DomainError("The amount must be a number with at most 2 decimals.", status=400)
    lines = []
    for item in c.order.items.all():
        raw = c.request.POST.get(f"qty_{item.pk}", "").strip()
        if raw in ("", "0"):
            continue
        if not raw.isdigit():
            raise DomainError(f"The quantity of {item.sku} must be a whole number.", status=400)
        lines.append({"line": item.pk, "quantity": int(raw)})
    d = form.cleaned_data
    payment_refunds.create_refund(
        store=c.store,
        order_id=c.order.pk,
        actor=c.actor,
        amount=d["amount"] if not lines else None,
        lines=lines or None,
        reason=d["reason"] or "refund by operator",
        restock=d["restock"] and bool(lines),
    )


def _ship(c: _OrderContext) -> None:
    carrier = c.request.POST.get("carrier", "")
    fulfillment_services.ship(store=c.store, fulfillment=c.need_fulfillment(), carrier=carrier, actor=c.actor)


@dataclass(frozen=True)
class OrderAction:
    """One button of the order page: the permission it needs, when the order's state offers it,
    what it runs and what it says. The check and the action are one entry."""

    perm: Perm
    offered: Callable[[Any, Any], bool]  # (order, fulfillment or None)
    run: Callable[[_OrderContext], Any]
    done: str


ORDER_ACTIONS: dict[str, OrderAction] = {
    "approve": OrderAction(
        Perm.MANAGE_ORDERS,
        lambda o, f: order_selectors.in_fraud_review(o),
        lambda c: payment_services.approve_order(store=c.store, order_id=c.order.pk, actor=c.actor),
        "Approved: on to payment.",
    ),
    "reject": OrderAction(
        Perm.MANAGE_ORDERS,
        lambda o, f: order_selectors.in_fraud_review(o),
        lambda c: fraud_services.reject(store=c.store, order_id=c.order.pk, actor=c.actor, reason=c.reason),
        "Rejected.",
    ),
    "retry_payment": OrderAction(
        Perm.MANAGE_ORDERS,
        lambda o, f: payment_retry.can_retry(o),
        lambda c: payment_retry.retry_payment(
            store=c.store, order_id=c.order.pk, actor=c.actor, requested_by=c.actor
        ),
        "Payment retried with the same card: stock reserved again, on to fraud check and payment.",
    ),
    "cancel": OrderAction(
        Perm.MANAGE_ORDERS,
        lambda o, f: order_selectors.can_cancel(o),
        lambda c: order_services.cancel(
            store=c.store, order=c.order, actor=c.actor, reason=c.reason or "cancelled by operator"
        ),
        "Cancelled.",
    ),
    "pick": OrderAction(
        Perm.MANAGE_FULFILLMENT,
        lambda o, f: "pick" in fulfillment_selectors.next_steps(f),
        lambda c: fulfillment_services.pick(store=c.store, fulfillment=c.need_fulfillment(), actor=c.actor),
        "Picked.",
    ),
    "pack": OrderAction(
        Perm.MANAGE_FULFILLMENT, lambda o, f: "pack" in fulfillment_selectors.next_steps(f), _pack, "Packed."
    ),
    "ready": OrderAction(
        Perm.MANAGE_FULFILLMENT,
        lambda o, f: "mark_ready" in fulfillment_selectors.next_steps(f),
        lambda c: fulfillment_services.mark_ready(
            store=c.store, fulfillment=c.need_fulfillment(), actor=c.actor
        ),
        "Ready to ship.",
    ),
    "ship": OrderAction(
        Perm.MANAGE_FULFILLMENT, lambda o, f: "ship" in fulfillment_selectors.next_steps(f), _ship, "Shipped."
    ),
    "refund": OrderAction(
        Perm.MANAGE_ORDERS,
        lambda o, f: order_selectors.has_refundable_payment(o),
        _refund,
        "Refunded.",
    ),
}


def _order_actions(request: HttpRequest, order: Any, fulfillment: Any) -> dict[str, bool]:
    """The buttons to show: the order's state offers the action and the user may use it."""
    return {
        name: a.perm in request.store_perms and a.offered(order, fulfillment)
        for name, a in ORDER_ACTIONS.items()
    }


def _order_action_perm(*, action: str, **_: Any) -> Perm:
    if action not in ORDER_ACTIONS:
        raise Http404("No such action.")
    return ORDER_ACTIONS[action].perm


@page(perm=_order_action_perm)
@require_POST
def order_action(request: HttpRequest, order_id: str, action: str) -> HttpResponse:
    store = request.store
    order = order_selectors.get_order(store, order_id)
    fulfillment = fulfillment_selectors.list_fulfillments(store).filter(order=order).first()
    entry = ORDER_ACTIONS[action]
    context = _OrderContext(request, order, fulfillment)
    _act(request, lambda: entry.run(context), entry.done)
    return _back(request, reverse("dashboard:order", args=[order.pk]))


# ----------------------------------------------------------------------------- inventory


@page(perm=Perm.MANAGE_STOCK)
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
        **alert_selectors.filter_choices(),
    )


@page(perm=Perm.MANAGE_ALERTS)
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
        data={"path": path},
        board=selectors.workflow_board(
            store, timezone.now() - timedelta(hours=24), path_topics=path["topics"] if path else ()
        ),
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


@page(superuser_only=True, perm=Perm.MANAGE_STORE)
@require_POST
def store_switches(request: HttpRequest, slug: str) -> HttpResponse:
    """The stores page's row form (platform staff): a few of a store's settings, through the same
    validation and write as the settings page; the right to it is MANAGE_STORE in *that* store."""
    target = Store.objects.filter(slug=slug).first()
    if target is None:
        raise Http404("No such store.")
    require_perm(request, Perm.MANAGE_STORE, store=target)
    data = parse_settings_form(request.POST, names=STORE_SWITCHES)
    _act(
        request,
        lambda: update_store_settings(
            store=target, actor=actor_name(request), changes=validate_store_settings(target, data)
        ),
        f"Switches of {target.slug} saved.",
    )
    return _back(request, reverse("dashboard:stores"))


# ------------------------------------------------------------------------------ settings


@page(read=Perm.MANAGE_STORE, perm=Perm.MANAGE_STORE)
def store_settings_page(request: HttpRequest) -> HttpResponse:
    """The store's own settings for its owners (and platform staff): every setting the policy's
    declaration lists, validated and written by the same functions as `PATCH /api/v1/store`."""
    store = request.store
    submitted, errors = None, {}
    if request.method == "POST":
        submitted = parse_settings_form(request.POST)
        try:
            changes = validate_store_settings(store, submitted)
        except ValidationFailed as exc:
            errors = exc.fields or {}
            messages.error(request, "Check the highlighted settings.")
        else:
            update_store_settings(store=store, actor=actor_name(request), changes=changes)
            messages.success(request, "Settings saved.")
            return _back(request, reverse("dashboard:settings"))
    return _render(
        request,
        "dashboard/settings.html",
        "settings",
        fields=settings_form_fields(store, store_settings(store), submitted=submitted, errors=errors),
        errors=errors,
        zones=sorted(zone_names()),
    )
