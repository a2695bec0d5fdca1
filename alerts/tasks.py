"""Celery tasks of the alerts app (thin: load by id → call a service)."""

from __future__ import annotations

import random

from celery import shared_task
from django.conf import settings

from orderflow.core.tenancy import Store, use_store

from . import services, webhooks
from .models import Alert


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, base * 2**retries)]."""
    cap = min(settings.WEBHOOK_RETRY_BACKOFF_MAX, settings.WEBHOOK_RETRY_BACKOFF * (2**retries))
    return random.uniform(0, cap) if settings.WEBHOOK_RETRY_JITTER else cap


@shared_task(name="alerts.deliver_webhook", bind=True, acks_late=True, max_retries=None)
def deliver_webhook(self, delivery_id: str, store_id: int) -> str:
    """One attempt; transient failures come back here after a backoff, at most
    WEBHOOK_MAX_RETRIES times (counted per send or redeliver, not over the delivery's life)."""
    retries = self.request.retries or 0
    can_retry = retries < settings.WEBHOOK_MAX_RETRIES
    countdown = backoff_seconds(retries) if can_retry else 0.0
    store = Store.objects.filter(pk=store_id).first()
    with use_store(store):
        outcome = webhooks.attempt_delivery(
            delivery_id=delivery_id, store_id=store_id, can_retry=can_retry, retry_in=countdown
        )
    if outcome == webhooks.Outcome.RETRY:
        raise self.retry(countdown=countdown)
    return outcome


@shared_task(name="alerts.send_alert_email", acks_late=True, autoretry_for=(OSError,), retry_backoff=5,
             retry_backoff_max=300, retry_jitter=True, max_retries=5)  # fmt: skip
def send_alert_email(alert_id: int, store_id: int) -> int:
    alert = Alert.all_stores.select_related("store").filter(pk=alert_id, store_id=store_id).first()
    if alert is None:
        return 0
    with use_store(alert.store):
        return services.send_alert_email(alert=alert)


@shared_task(name="alerts.resend_stale_deliveries", acks_late=True, ignore_result=True)
def resend_stale_deliveries() -> int:
    return webhooks.resend_stale_deliveries(overdue_seconds=settings.WEBHOOK_STALE_AFTER_SECONDS)
