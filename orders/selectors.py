"""Reads on orders. Each takes the store first (or, for the public tracking page, the unguessable
token) and never returns another store's rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from orderflow.core import statemachine
from orderflow.core.aggregates import Median, Seconds, median_by_offset, supports_median
from orderflow.core.errors import NotFound, ValidationFailed
from orderflow.core.events import Event
from orderflow.core.tenancy import NoStoreInContext, Store

from .models import IdempotencyRecord, Order, OrderItem


def _require(store: Store | None) -> Store:
    if store is None:
        raise NoStoreInContext("order selectors need a store")
    return store


def parse_when(raw: str) -> datetime:
    """An ISO 8601 datetime (or a bare date = its midnight UTC); naive means UTC. Normalised to
    UTC: PostgreSQL refuses offsets Python accepts (beyond ±15:59). ValueError with the reason."""
    value = None
    try:
        value = parse_datetime(raw)
        if value is None:
            day = parse_date(raw)
            if day is not None:
                value = datetime(day.year, day.month, day.day)
    except ValueError:
        value = None
    if value is None:
        raise ValueError("Use an ISO 8601 datetime, like 2025-01-31T12:00:00Z.")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("That datetime is out of range.")


def _when(name: str, value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return parse_when(value)
    except ValueError as exc:
        raise ValidationFailed(fields={name: [str(exc)]})


def _choices(name: str, value: str | list[str], allowed: list[str]) -> list[str]:
    wanted = [s.strip() for s in value.split(",")] if isinstance(value, str) else list(value)
    wanted = [s for s in wanted if s]
    unknown = sorted(set(wanted) - set(allowed))
    if unknown:
        raise ValidationFailed(fields={name: [f"Unknown {name}: {', '.join(unknown)}."]})
    return wanted


# The order lists' sort key: newest first, the id breaking ties. The index `order_store_created_id`
# (store, created_at DESC, id DESC) serves it, filtered by store, at any depth.
ORDER_LIST_ORDERING = ("-created_at", "-id")


def order_list(store: Store, **filters: Any) -> QuerySet[Order]:
    """The store's orders, newest first, with their lines prefetched (one query per page each),
    narrowed by `filter_orders`."""
    qs = Order.all_stores.for_store(_require(store)).prefetch_related("items").order_by(*ORDER_LIST_ORDERING)
    return filter_orders(qs, **filters)


def filter_orders(
    qs: QuerySet[Order],
    *,
    status: str | list[str] | None = None,
    payment_status: str | list[str] | None = None,
    fulfillment_status: str | list[str] | None = None,
    created_after: str | datetime | None = None,
    created_before: str | datetime | None = None,
    updated_after: str | datetime | None = None,
    email: str | None = None,
    search: str | None = None,
) -> QuerySet[Order]:
    """The list filters, one rule each (the API's FilterSet and the dashboard both land here).

    The statuses take one value or a list (a comma list as text); the dates are ISO datetimes
    (bad → 400), `created_before` exclusive, the others inclusive; `email` is exact (emails are
    stored lower-case); `search` matches the number or part of the email."""
    for name, value, allowed in (
        ("status", status, Order.Status.values),
        ("payment_status", payment_status, Order.PaymentStatus.values),
        ("fulfillment_status", fulfillment_status, Order.FulfillmentStatus.values),
    ):
        if value:
            qs = qs.filter(**{f"{name}__in": _choices(name, value, allowed)})
    if created_after:
        qs = qs.filter(created_at__gte=_when("created_after", created_after))
    if created_before:
        qs = qs.filter(created_at__lt=_when("created_before", created_before))
    if updated_after:
        qs = qs.filter(updated_at__gte=_when("updated_after", updated_after))
    if email:
        qs = qs.filter(customer_email=email.strip().lower())
    if search:
        term = search.strip().lstrip("#")
        cond = Q(customer_email__icontains=term.lower())
        if term.isdigit() and len(term) < 19:
            cond |= Q(number=int(term))
        qs = qs.filter(cond)
    return qs


def get_order(store: Store, order_id: Any) -> Order:
    """One order of this store; 404 for a malformed id and for another store's order alike."""
    try:
        pk = uuid.UUID(str(order_id))
    except ValueError:
        raise NotFound("No such order.", code="not_found")
    order = Order.all_stores.for_store(_require(store)).prefetch_related("items").filter(pk=pk).first()
    if order is None:
        raise NotFound("No such order.", code="not_found")
    return order


def orders_at_rest(
    store: Store,
    statuses: Any,
    *,
    created_before: datetime | None = None,
    updated_before: datetime | None = None,
) -> QuerySet[Order]:
    """This store's orders in `statuses` that have not moved since the given time, oldest first:
    what a reconciler sweep starts from (it may narrow the queryset with its own `Exists` against
    `OuterRef("pk")`, and slices it to its batch)."""
    qs = Order.all_stores.filter(store=_require(store), status__in=list(statuses))
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    if updated_before is not None:
        qs = qs.filter(updated_at__lt=updated_before)
    return qs.order_by("created_at")


def order_events(store: Store, order: Order) -> QuerySet[Event]:
    """The order's full domain-event log, oldest first (the workflow trace). The id is the sort
    key: events are only ever appended, and the id grows with them."""
    return Event.all_stores.filter(store=_require(store), order_id=order.pk).order_by("id")


def order_by_tracking_token(token: str) -> Order | None:
    """The shopper's door: the token alone finds the order, in whichever store (explicitly
    cross-store; the token is 32 random bytes' worth of unguessable)."""
    if not token or len(token) > 64:
        return None
    return (
        Order.all_stores.select_related("store")
        .prefetch_related("items")
        .filter(tracking_token=token)
        .first()
    )


# ------------------------------------------------------------------------------- tracking

# Event topic → (step, label) for the shopper's timeline. Topics not listed are internal
# (fraud scoring, payment retries, stock moves) and stay off the timeline.
TIMELINE_STEPS: dict[str, tuple[str, str]] = {
    "order.created": ("placed", "Order placed"),
    "order.paid": ("payment_confirmed", "Payment confirmed"),
    "payment.processed": ("payment_confirmed", "Payment confirmed"),
    "order.payment_failed": ("payment_failed", "Payment failed"),
    "payment.retry_requested": ("payment_retried", "Payment tried again"),
    "order.fulfilling": ("preparing", "Being prepared"),
    "fulfillment.created": ("preparing", "Being prepared"),
    "fulfillment.picking": ("picking", "Being picked"),
    "fulfillment.picked": ("picking", "Being picked"),
    "fulfillment.packed": ("packed", "Packed"),
    "fulfillment.ready_to_ship": ("ready_to_ship", "Ready to ship"),
    "order.ready_to_ship": ("ready_to_ship", "Ready to ship"),
    "order.shipped": ("shipped", "Shipped"),
    "shipment.created": ("shipped", "Shipped"),
    "shipment.shipped": ("shipped", "Shipped"),
    "fulfillment.shipped": ("shipped", "Shipped"),
    "shipment.in_transit": ("in_transit", "In transit"),
    "shipment.out_for_delivery": ("out_for_delivery", "Out for delivery"),
    "shipment.exception": ("delivery_exception", "Delivery problem — the carrier is on it"),
    "shipment.returned": ("returned", "Returned to sender"),
    "shipment.delivered": ("delivered", "Delivered"),
    "order.delivered": ("delivered", "Delivered"),
    "order.cancelled": ("cancelled", "Cancelled"),
    "order.rejected": ("cancelled", "Cancelled"),
    "order.expired": ("expired", "Expired — payment was not completed"),
    "payment.partially_refunded": ("partially_refunded", "Partly refunded"),
    "payment.refunded": ("refunded", "Refunded"),
}

STATUS_LABELS: dict[str, str] = {
    "pending": "Order received",
    "fraud_review": "Order received",  # a review hold is not the shopper's business
    "payment_processing": "Processing payment",
    "paid": "Payment confirmed",
    "fulfilling": "Being prepared",
    "ready_to_ship": "Ready to ship",
    "shipped": "Shipped",
    "delivered": "Delivered",
    "payment_failed": "Payment failed",
    "cancelled": "Cancelled",
    "rejected": "Cancelled",
    "expired": "Expired",
}

SHIPMENT_FIELDS = ("carrier", "tracking_number", "status", "estimated_delivery")


def tracking(order: Order, *, public: bool) -> dict[str, Any]:
    """Status, a timeline of customer-meaningful steps with times, and the shipment (from the
    latest `shipment.*` event's data: orders does not import fulfillment). One query for the
    events. `public=True` (the shopper's page) reveals only the first name and the city."""
    events = list(
        Event.all_stores.filter(store_id=order.store_id, order_id=order.pk)
        .order_by("id")
        .only("id", "topic", "data", "created_at")
    )
    timeline: list[dict[str, Any]] = []
    seen: set[str] = set()
    shipment: dict[str, Any] | None = None
    for event in events:
        if event.topic.startswith("shipment."):
            data = event.data or {}
            shipment = {name: data.get(name) for name in SHIPMENT_FIELDS}
        step = TIMELINE_STEPS.get(event.topic)
        if step is None or step[0] in seen:
            continue
        seen.add(step[0])
        timeline.append({"step": step[0], "label": step[1], "at": event.created_at})
    if order.status == Order.Status.REJECTED:  # the shopper sees a cancellation, not a fraud verdict
        shown_status = Order.Status.CANCELLED
    elif order.status == Order.Status.FRAUD_REVIEW:
        shown_status = Order.Status.PENDING
    else:
        shown_status = order.status
    result: dict[str, Any] = {
        "number": order.number,
        "status": shown_status,
        "status_label": STATUS_LABELS.get(order.status, order.status),
        "fulfillment_status": order.fulfillment_status,
        "placed_at": order.created_at,
        "updated_at": order.updated_at,
        "items": [{"name": item.name, "quantity": item.quantity} for item in order.items.all()],
        "timeline": timeline,
        "shipment": shipment,
    }
    if public:
        name = (order.customer_name or "").strip()
        result["customer"] = {"first_name": name.split()[0] if name else ""}
        result["shipping"] = {"city": order.shipping_city}
    else:
        result["order_id"] = str(order.pk)
        result["status"] = order.status
        result["customer"] = {"name": order.customer_name, "email": order.customer_email}
        result["shipping"] = {"city": order.shipping_city, "country": order.shipping_country}
    return result


# ------------------------------------------------------- figures and vocabulary for other apps


def state_machines() -> dict[str, type]:
    """The machines this app declares (their TRANSITIONS tables), by workflow step: what the
    dashboard's workflow page and timeline draw, without reaching into orders' models."""
    return {"order": Order}


def status_choices() -> list[tuple[str, str]]:
    """The order statuses as (value, label), for a filter's choices."""
    return list(Order.Status.choices)


def final_statuses() -> frozenset[str]:
    return frozenset(Order.FINAL_STATUSES)


def in_fraud_review(order: Order) -> bool:
    return order.status == Order.Status.FRAUD_REVIEW


def can_cancel(order: Order) -> bool:
    """The order's table allows `cancelled` from where it stands."""
    return statemachine.allowed(order, Order.Status.CANCELLED)


def has_refundable_payment(order: Order) -> bool:
    """Money was taken and not all of it given back."""
    return order.payment_status in (Order.PaymentStatus.SUCCEEDED, Order.PaymentStatus.PARTIALLY_REFUNDED)


def count_by_status(store: Store) -> dict[str, int]:
    """Every status present, zero when empty (one GROUP BY on the (store, status, created) index)."""
    counts = {s.value: 0 for s in Order.Status}
    rows = Order.all_stores.filter(store=store).values("status").annotate(n=Count("pk")).order_by()
    for row in rows:
        counts[row["status"]] = row["n"]
    return counts


def count_retrying_payment(store: Store) -> int:
    """Retrying orders are `payment_processing` by definition, so the status index finds them."""
    return Order.all_stores.filter(
        store=store, status=Order.Status.PAYMENT_PROCESSING, payment_status=Order.PaymentStatus.RETRYING
    ).count()


def window_figures(
    store: Store, *, week_ago: datetime, hour_ago: datetime, today: datetime
) -> dict[str, Any]:
    """Orders and revenue today / last hour / last 7 days, payment outcomes, paid and shipped counts
    and the median seconds accepted->paid and paid->shipped over 7 days: one aggregate over the
    last 7 days of the store's orders (one indexed range scan of (store, created_at)).

    Revenue = totals of orders whose payment succeeded (refunded money is not revenue)."""
    since = min(week_ago, today)
    captured = Q(payment_status=Order.PaymentStatus.SUCCEEDED)
    paid = Q(paid_at__isnull=False)
    shipped = Q(paid_at__isnull=False, shipped_at__isnull=False)
    week = Q(created_at__gte=week_ago)
    qs = Order.all_stores.filter(store=store, created_at__gte=since)
    ok = [Order.PaymentStatus.SUCCEEDED, Order.PaymentStatus.PARTIALLY_REFUNDED, Order.PaymentStatus.REFUNDED]
    aggregates: dict[str, Any] = {
        "orders_7d": Count("pk", filter=week),
        "orders_today": Count("pk", filter=Q(created_at__gte=today)),
        "orders_hour": Count("pk", filter=Q(created_at__gte=hour_ago)),
        "revenue_7d": Sum("total", filter=captured & week),
        "revenue_today": Sum("total", filter=captured & Q(created_at__gte=today)),
        "revenue_hour": Sum("total", filter=captured & Q(created_at__gte=hour_ago)),
        "pay_ok": Count("pk", filter=week & Q(payment_status__in=ok)),
        "pay_failed": Count("pk", filter=week & Q(payment_status=Order.PaymentStatus.FAILED)),
        "paid_n": Count("pk", filter=paid & week),
        "shipped_n": Count("pk", filter=shipped & week),
    }
    if supports_median():
        aggregates["median_paid"] = Median(Seconds("paid_at", "created_at"), filter=paid & week)
        aggregates["median_shipped"] = Median(Seconds("shipped_at", "paid_at"), filter=shipped & week)
    row = qs.aggregate(**aggregates)
    if not supports_median():
        window = qs.filter(week)
        row["median_paid"] = median_by_offset(window.filter(paid), Seconds("paid_at", "created_at"))
        row["median_shipped"] = median_by_offset(window.filter(shipped), Seconds("shipped_at", "paid_at"))
    return row


def idempotent_replays_since(store: Store, since: datetime) -> int:
    """Duplicates answered from a stored response, on keys replayed since `since` (`replays` counts
    every replay of a key, so a key also replayed earlier counts those too: keys live ~48 h)."""
    total = IdempotencyRecord.all_stores.filter(store=store, last_replayed_at__gte=since).aggregate(
        n=Sum("replays")
    )["n"]
    return total or 0


def recent_orders(store: Store, limit: int) -> QuerySet[Order]:
    """The store's newest orders, newest first."""
    return Order.all_stores.filter(store=store).order_by("-created_at")[:limit]


def figures_by_store(*, since: datetime, recent_since: datetime) -> dict[int, dict[str, Any]]:
    """Platform staff, every store at once (grouped by store, not one query per store): revenue and
    orders since `since`, and orders since `recent_since`, keyed by store id."""
    rows = (
        Order.all_stores.filter(created_at__gte=since)
        .values("store_id")
        .annotate(
            revenue=Sum("total", filter=Q(payment_status=Order.PaymentStatus.SUCCEEDED)),
            orders=Count("pk"),
            recent=Count("pk", filter=Q(created_at__gte=recent_since)),
        )
        .order_by()
    )
    return {r["store_id"]: r for r in rows}


# ---------------------------------------------------------------- reads for the other apps


def store_orders(store: Store) -> QuerySet[Order]:
    """Every order of the store, unevaluated: for the other apps' own bounded reads (the fraud
    check's velocity counts and history), which filter and cap it themselves."""
    return Order.all_stores.filter(store=store)


GONE_STATUSES = frozenset({Order.Status.CANCELLED, Order.Status.EXPIRED})


def is_gone(order: Order) -> bool:
    """Was the order cancelled or expired (a charge that lands now is refunded)?"""
    return order.status in GONE_STATUSES


def order_is_gone(store_id: int, order_id: Any) -> bool:
    """`is_gone` by id: one indexed read."""
    return Order.all_stores.filter(store_id=store_id, pk=order_id, status__in=GONE_STATUSES).exists()


def items_of(store: Store, order_id: Any) -> list[OrderItem]:
    """The order's lines, in the order they were placed."""
    return list(OrderItem.all_stores.filter(store=store, order_id=order_id).order_by("id"))
