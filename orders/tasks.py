"""Celery tasks of the orders step (thin: call a service)."""

from celery import shared_task

from . import services


@shared_task(name="orders.purge_idempotency_keys", acks_late=True, ignore_result=True)
def purge_idempotency_keys() -> int:
    """Hourly: forget idempotency keys older than IDEMPOTENCY_KEY_TTL_HOURS (at least 24 h)."""
    return services.purge_idempotency_records()
