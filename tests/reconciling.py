"""Helpers for the reconciler tests (each app's sweep, and the one task that drives them).

A sweep runs with its after-commit work executed, so what it enqueues is really sent to the test
broker; `queued()` reads it back off the queue. Stuck states are rows written directly (`frozen`,
`stale_payment`): no worker runs."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import redis
from django.conf import settings as conf
from django.utils import timezone

from alerts.models import Alert
from orderflow.core.events import Event, handlers_for, run_handler_once
from orderflow.core.reconcile import run_all
from orders.models import Order
from payments import services
from payments.models import Payment

QUEUES = ("payments", "default", "orders", "fulfillment")


def empty_queues() -> None:
    redis.Redis.from_url(conf.CELERY_BROKER_URL).delete(*QUEUES)


def queued(task: str) -> list[list]:
    """Args of the `task` messages waiting in the broker (taken off the queue)."""
    r = redis.Redis.from_url(conf.CELERY_BROKER_URL)
    found = []
    for queue in QUEUES:
        for raw in r.lrange(queue, 0, -1):
            message = json.loads(raw)
            if message["headers"].get("task") == task:
                found.append(json.loads(base64.b64decode(message["body"]))[0])
                r.lrem(queue, 1, raw)
    return found


def sweep(django_capture_on_commit_callbacks, **kwargs) -> dict[str, int]:
    """One run of the reconciler (`core.reconcile`: every app's sweep), as beat would start it."""
    with django_capture_on_commit_callbacks(execute=True):
        return run_all(**kwargs)


def frozen(order: Order, *, status: str | None = None, seconds: float = 60, **fields) -> Order:
    """Put the order in `status` as if it had stopped moving `seconds` ago."""
    then = timezone.now() - timedelta(seconds=seconds)
    values = {"created_at": then, "updated_at": then, **fields}
    if status:
        values["status"] = status
    Order.all_stores.filter(pk=order.pk).update(**values)
    order.refresh_from_db()
    return order


def reconciled(store, order) -> list[dict]:
    events = Event.all_stores.filter(store=store, order_id=order.pk, topic="order.reconciled")
    return [e.data for e in events.order_by("id")]


def deliver_alerts(store, order) -> None:
    """Run the alert listener on the order's events, as the worker would."""
    for event in Event.all_stores.filter(store=store, order_id=order.pk).order_by("id"):
        for handler in handlers_for(event.topic):
            if handler.name in ("alerts.receivers.order_reconciled", "alerts.receivers.order_expired"):
                run_handler_once(event.pk, handler.name)


def alert(store, order, kind: str) -> Alert:
    return Alert.all_stores.get(store=store, kind=kind, subject=f"order:{order.pk}")


def stale_payment(payment: Payment, seconds: float | None = None) -> Payment:
    then = timezone.now() - timedelta(seconds=seconds or services.stuck_after_seconds() + 30)
    Payment.all_stores.filter(pk=payment.pk).update(updated_at=then)
    payment.refresh_from_db()
    return payment
