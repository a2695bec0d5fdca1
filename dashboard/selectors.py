"""Reads behind the dashboard: the stats, and what each page shows. Every function takes the store
first; none loops over orders in Python (counts, sums and medians are SQL aggregates). Another
app's data is read through that app's selectors, never its models: the dashboard shapes it.

Windows: "today" starts at midnight in TIME_ZONE; the rates and medians cover the last 7 days of
orders (by `created_at`), so one indexed range scan of (store, created_at) feeds all of them.
"""

from __future__ import annotations

import fnmatch
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Max, Min, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone

from alerts import selectors as alert_selectors
from fulfillment import services as fulfillment_services
from inventory import selectors as inventory_selectors
from orderflow.core.aggregates import Median, Seconds, median_by_offset, supports_median
from orderflow.core.events import Event, registered_handlers
from orderflow.core.statemachine import graph
from orderflow.core.tenancy import Store, StoreKeyThrottle
from orderflow.core.topics import MACHINES, STEPS, TOPICS, topics_of_box
from orders import selectors as order_selectors
from payments import breaker
from payments import selectors as payment_selectors
from payments import services as payment_services

RECENT_ORDERS = 10
LOW_STOCK_LIMIT = 50
TWO_PLACES = Decimal("0.01")


def _money(value: Decimal | None) -> str:
    return str((value or Decimal("0")).quantize(TWO_PLACES))


def _rate(good: int, total: int) -> float | None:
    return round(good / total, 4) if total else None


def start_of_today(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


# ------------------------------------------------------------------------------------ stats


def window_figures(store: Store, now: datetime | None = None) -> dict[str, Any]:
    """Orders and revenue today / last hour / last 7 days, success and fulfillment rates, medians —
    one aggregate over the last 7 days of the store's orders (orders' selectors)."""
    now = now or timezone.now()
    row = order_selectors.window_figures(
        store, week_ago=now - timedelta(days=7), hour_ago=now - timedelta(hours=1), today=start_of_today(now)
    )
    return {
        "orders": {
            "today": row["orders_today"],
            "last_hour": row["orders_hour"],
            "last_7_days": row["orders_7d"],
        },
        "revenue": {
            "today": _money(row["revenue_today"]),
            "last_hour": _money(row["revenue_hour"]),
            "last_7_days": _money(row["revenue_7d"]),
        },
        "payment_success_rate": _rate(row["pay_ok"], row["pay_ok"] + row["pay_failed"]),
        "fulfillment_rate": _rate(row["shipped_n"], row["paid_n"]),
        "median_accept_to_paid_seconds": _round(row["median_paid"]),
        "median_paid_to_shipped_seconds": _round(row["median_shipped"]),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def low_stock(store: Store, limit: int = LOW_STOCK_LIMIT) -> list[dict[str, Any]]:
    rows = inventory_selectors.lowest_available(store).values(
        "product__sku", "product__name", "on_hand", "reserved", "available_qty", "low_stock_threshold"
    )[:limit]
    return [
        {
            "sku": r["product__sku"],
            "name": r["product__name"],
            "on_hand": r["on_hand"],
            "reserved": r["reserved"],
            "available": r["available_qty"],
            "low_stock_threshold": r["low_stock_threshold"],
        }
        for r in rows
    ]


def idempotent_replays_today(store: Store, now: datetime | None = None) -> int:
    return order_selectors.idempotent_replays_since(store, start_of_today(now))


def recent_orders(store: Store, limit: int = RECENT_ORDERS) -> list[dict[str, Any]]:
    return [order_summary(o) for o in order_selectors.recent_orders(store, limit)]


def order_summary(order: Any) -> dict[str, Any]:
    return {
        "id": str(order.pk),
        "number": order.number,
        "status": order.status,
        "payment_status": order.payment_status,
        "fulfillment_status": order.fulfillment_status,
        "customer_email": order.customer_email,
        "total": _money(order.total),
        "currency": order.currency,
        "created_at": order.created_at.isoformat(),
    }


def stats(store: Store, now: datetime | None = None) -> dict[str, Any]:
    """`GET /api/v1/dashboard/stats` and the overview's cards (and the throttled live push)."""
    now = now or timezone.now()
    return {
        "store": store.slug,
        "currency": store.currency,
        "generated_at": now.isoformat(),
        "orders_by_status": order_selectors.count_by_status(store),
        **window_figures(store, now),
        "orders_retrying_payment": order_selectors.count_retrying_payment(store),
        "low_stock_skus": low_stock(store),
        "open_alerts_by_severity": alert_selectors.open_alert_counts_by_severity(store),
        "idempotent_replays_today": idempotent_replays_today(store, now),
        "recent_orders": recent_orders(store),
    }


# ------------------------------------------------------------------------------- events


def order_events(store: Store, order_id: Any) -> QuerySet[Event]:
    return Event.all_stores.filter(store=store, order_id=order_id).order_by("id")


def recent_events(store: Store, limit: int = 50, after_id: int | None = None) -> list[dict[str, Any]]:
    """The last `limit` events, oldest first; with `after_id`, only newer ones (a page that
    reconnects its websocket fills the gap with these)."""
    qs = Event.all_stores.filter(store=store).select_related("store")
    if after_id is not None:
        qs = qs.filter(pk__gt=after_id)
    rows = list(qs.order_by("-id")[:limit])
    return [e.as_message() for e in reversed(rows)]


def minute_series(store: Store, minutes: int = 60, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per minute over the last hour: orders accepted, orders paid, payments failed (from the event
    log, one GROUP BY on the (store, topic, created_at) index). Every minute present, oldest first."""
    now = now or timezone.now()
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=minutes - 1)
    topics = {"order.created": "orders", "order.paid": "paid", "order.payment_failed": "failed"}
    rows = (
        Event.all_stores.filter(store=store, topic__in=list(topics), created_at__gte=start)
        .annotate(minute=TruncMinute("created_at"))
        .values("minute", "topic")
        .annotate(n=Count("pk"))
        .order_by()
    )
    buckets = {start + timedelta(minutes=i): {"orders": 0, "paid": 0, "failed": 0} for i in range(minutes)}
    for row in rows:
        bucket = buckets.get(row["minute"])
        if bucket is not None:
            bucket[topics[row["topic"]]] += row["n"]
    return [{"t": t.isoformat(), **v} for t, v in buckets.items()]


def topic_counts(store: Store, since: datetime) -> dict[str, int]:
    rows = (
        Event.all_stores.filter(store=store, created_at__gte=since)
        .values("topic")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {r["topic"]: r["n"] for r in rows}


# ------------------------------------------------------------------------------ workflow


def workflow_graph() -> dict[str, Any]:
    """The flow as data, GENERATED from the state tables and the event→handler wiring: each
    machine's states and moves (a move to `s` emits `<prefix>.<s>`), and each handler's topics
    and queue. The workflow page draws exactly this."""
    machines = []
    for model in _machines_by_step().values():
        table = graph(model)
        initial = str(model._meta.get_field("status").default)
        machines.append(
            {
                "name": model.__name__,
                "prefix": model.EVENT_PREFIX,
                "initial": initial,
                "states": list(table),
                "edges": [[src, dst] for src, dsts in table.items() for dst in dsts],
            }
        )
    handlers = [
        {"name": h.name, "topics": list(h.topics), "queue": h.queue, "atomic": h.atomic}
        for h in sorted(registered_handlers().values(), key=lambda h: (h.queue, h.name))
    ]
    return {"machines": machines, "handlers": handlers}


def _machines_by_step() -> dict[str, type]:
    """The registry's state machines by workflow column, left to right."""
    by_step = {m.EVENT_STEP: m for m in MACHINES.values()}
    return {step: by_step[step] for step in STEPS if step in by_step}


STEP_TITLES = {
    "order": "Order",
    "stock": "Stock",
    "payment": "Payment",
    "fulfillment": "Fulfillment",
    "shipment": "Shipment",
    "alert": "Alerts",
    "store": "Store",
}


def _state_order(model: type) -> list[str]:
    """A machine's states as its table declares them: the happy path first, top down."""
    return list(graph(model))


def _event_label(name: str, step: str) -> str:
    prefix, _, rest = name.partition(".")
    return rest if prefix == step else f"{prefix} {rest}"


def workflow_board(store: Store, since: datetime, path_topics: Any = ()) -> list[dict[str, Any]]:
    """The workflow page: one column per step, left to right as an order moves. Each column holds
    its machine's states (top down from the initial one) and then the step's events that move no
    state. Every topic of the registry has its box from the start, counted since `since`; a box
    knows the moves out of it and the handlers its topics wake (shown on demand); `path_topics`
    (an order's events) light the boxes it went through."""
    counts = topic_counts(store, since)
    handlers = sorted(registered_handlers().values(), key=lambda h: h.name)

    def listeners(topics: list[str]) -> list[dict[str, str]]:
        return [
            {"name": h.name.replace(".receivers.", "."), "queue": h.queue}
            for h in handlers
            if "*" not in h.topics and any(fnmatch.fnmatchcase(t, p) for t in topics for p in h.topics)
        ]

    def box(id_: str, label: str, topics: list[str], **extra: Any) -> dict[str, Any]:
        return {
            "id": id_,
            "label": label.replace("_", " "),
            "topics": topics,
            "count": sum(counts.get(t, 0) for t in topics),
            "handlers": listeners(topics),
            "hit": any(t in path_topics for t in topics),
            **extra,
        }

    columns = []
    for step in STEPS:
        boxes = []
        model = _machines_by_step().get(step)
        if model is not None:
            table = graph(model)
            initial = str(model._meta.get_field("status").default)
            for state in _state_order(model):
                topics = topics_of_box(f"{model.EVENT_PREFIX}.{state}")
                boxes.append(
                    box(
                        f"{model.EVENT_PREFIX}.{state}",
                        state,
                        topics,
                        kind="state",
                        next=[n.replace("_", " ") for n in table[state]],
                        next_ids=[f"{model.EVENT_PREFIX}.{n}" for n in table[state]],
                        initial=state == initial,
                        final=not table[state],
                    )
                )
        for topic in (t for t in TOPICS.values() if t.step == step and t.box is None):
            label = _event_label(topic.name, step)
            boxes.append(box(f"topic.{topic.name}", label, [topic.name], kind="event", next=[]))
        columns.append({"step": step, "title": STEP_TITLES[step], "boxes": boxes})
    return columns


# ----------------------------------------------------------------------------- integrity


def retrying_payments(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """Payments between attempts right now, soonest next attempt first."""
    rows = payment_selectors.retrying_payments(store)[:limit]
    return [
        {
            "order_id": str(p.order_id),
            "number": p.order.number,
            "attempts": p.attempts,
            "last_error": p.last_error,
            "next_retry_at": p.next_retry_at,
            "amount": _money(p.amount),
            "currency": p.currency,
        }
        for p in rows
    ]


def waiting_payments(store: Store, now: datetime | None = None) -> list[dict[str, Any]]:
    """Payments waiting out a gateway outage, in release order, with the window each has left."""
    now = now or timezone.now()
    rows = []
    for p in payment_selectors.waiting_payments(store):
        ends = payment_services.window_ends_at(p)
        rows.append(
            {
                "order_id": str(p.order_id),
                "number": p.order.number,
                "waiting_since": p.waiting_since,
                "window_ends_at": ends,
                "window_left_seconds": max(0, round((ends - now).total_seconds())),
                "attempts": p.attempts,
                "amount": _money(p.amount),
                "currency": p.currency,
            }
        )
    return rows


def outbox(store: Store, now: datetime | None = None) -> dict[str, Any]:
    """Backlog (events not yet published), the oldest one's age, and the publish lag of the last
    15 minutes (median and max of published_at - created_at)."""
    now = now or timezone.now()
    backlog = Event.all_stores.filter(store=store, published_at__isnull=True).aggregate(
        n=Count("pk"), oldest=Min("created_at")
    )
    recent = Event.all_stores.filter(
        store=store, created_at__gte=now - timedelta(minutes=15), published_at__isnull=False
    )
    lag: dict[str, Any] = recent.aggregate(n=Count("pk"), worst=Max(Seconds("published_at", "created_at")))
    if supports_median():
        lag["median"] = recent.aggregate(m=Median(Seconds("published_at", "created_at")))["m"]
    else:
        lag["median"] = median_by_offset(recent, Seconds("published_at", "created_at"))
    oldest = backlog["oldest"]
    return {
        "backlog": backlog["n"],
        "oldest_unpublished_seconds": _round((now - oldest).total_seconds()) if oldest else None,
        "published_last_15_min": lag["n"],
        "publish_lag_median_ms": None if lag["median"] is None else round(lag["median"] * 1000, 1),
        "publish_lag_max_ms": None if lag["worst"] is None else round(lag["worst"] * 1000, 1),
    }


def webhook_log(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    rows = alert_selectors.webhook_deliveries(store)[:limit]
    return [
        {
            "id": str(d.pk),
            "topic": d.topic,
            "url": d.endpoint.url,
            "status": d.status,
            "http_status": d.http_status,
            "duration_ms": d.duration_ms,
            "attempts": d.attempts,
            "retries": max(d.attempts - 1, 0),
            "last_error": d.last_error,
            "created_at": d.created_at.isoformat(),
            "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        }
        for d in rows
    ]


def integrity(store: Store) -> dict[str, Any]:
    return {
        "idempotent_replays_today": idempotent_replays_today(store),
        "retrying_payments": retrying_payments(store),
        "waiting_payments": waiting_payments(store),
        "breaker": breaker.state(),
        "outbox": outbox(store),
        "webhook_deliveries": webhook_log(store),
    }


# -------------------------------------------------------------------------------- stores


def throttled_store_ids() -> set[int] | None:
    """Stores with a credential at its API rate limit right now; None when it cannot be told.

    Reads what DRF's throttle keeps in the shared cache (`throttle:<store id>:<credential>` → the
    request times of the current window), so it agrees with what the API answers."""
    try:
        throttle = StoreKeyThrottle()
        limit, window = throttle.num_requests, throttle.duration
        client = cache._cache.get_client(None)  # Django's RedisCache: the redis-py client
        base = cache.make_key("")
        cutoff = time.time() - window
        ids: set[int] = set()
        for raw in client.scan_iter(match=cache.make_key("throttle:") + "*", count=500):
            key = raw.decode()[len(base) :]
            history = cache.get(key) or []
            if sum(1 for t in history if t > cutoff) >= limit:
                ids.add(int(key.split(":")[1]))
        return ids
    except Exception:
        return None


def stores_overview(now: datetime | None = None) -> list[dict[str, Any]]:
    """Platform staff: every store's health, 24 h revenue and throughput (one query per figure,
    grouped by store, not one per store)."""
    now = now or timezone.now()
    day_ago, window = now - timedelta(hours=24), 15
    recent_since = now - timedelta(minutes=window)
    figures = order_selectors.figures_by_store(since=day_ago, recent_since=recent_since)
    critical = alert_selectors.open_critical_counts_by_store()
    throttled = throttled_store_ids()
    out = []
    for store in Store.objects.order_by("slug"):
        f = figures.get(store.pk, {})
        out.append(
            {
                "store": store,
                "open_critical_alerts": critical.get(store.pk, 0),
                "healthy": not critical.get(store.pk, 0),
                "revenue_24h": _money(f.get("revenue")),
                "orders_24h": f.get("orders", 0),
                "orders_per_minute": round(f.get("recent", 0) / window, 2),
                "throttled": None if throttled is None else store.pk in throttled,
                "fraud_check_enabled": bool(store.setting("fraud_check_enabled")),
                "fulfillment_autopilot": fulfillment_services.autopilot_enabled(store),
                "fraud_review_threshold": store.setting("fraud_review_threshold"),
            }
        )
    return out
