"""Core Celery tasks: relay the outbox; drain the previous release's handler messages."""

from celery import shared_task
from django.conf import settings

from . import events


@shared_task(
    name="core.run_handler",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
)
def run_handler(event_id: int, handler_name: str) -> bool:
    """Messages a release before per-handler tasks sent (one task for every handler) may still sit
    in a queue after an upgrade: run them once, as their handler's own task would. Nothing sends
    this any more."""
    return events.run_handler_once(event_id, handler_name)


@shared_task(name="core.relay_outbox", acks_late=True, ignore_result=True)
def relay_outbox() -> int:
    return events.relay_unpublished(
        older_than_seconds=settings.OUTBOX_RELAY_AFTER_SECONDS, batch=settings.OUTBOX_RELAY_BATCH
    )
