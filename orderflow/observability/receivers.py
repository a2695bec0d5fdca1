"""Recording what a process does, hooked in from outside the flow.

- Celery's task_prerun / task_postrun signals: every task's run time and outcome, in the process
  that ran it (a worker, or the caller of an eager `.apply()`); the webhook task's return value is
  the delivery's outcome.
- `events_published` (orderflow.core.events): fires once per event in the process that published
  it (right after the commit, or the outbox dispatcher per batch). Order outcomes and stock-outs
  are counted from the events, so they count what was committed, never a rolled-back attempt, and
  the flow's code carries no metrics calls. Like the events, at least once: a rare event published
  twice (a crash between sending and stamping it) counts twice.
"""

from __future__ import annotations

import logging
import time

from celery.signals import task_postrun, task_prerun
from django.dispatch import receiver

from inventory.events import ThresholdReached
from orderflow.core.events import events_published
from orderflow.core.outbox import dispatcher_started, dispatcher_stopped

from . import instruments, tracing

log = logging.getLogger(__name__)

WEBHOOK_TASK = "alerts.deliver_webhook"
WEBHOOK_OUTCOMES = {"succeeded", "failed", "retry", "skipped"}

# task id -> when it started, in this process (prerun and postrun run in the same process).
_started: dict[str, float] = {}


@task_prerun.connect(dispatch_uid="observability.task_started")
def _task_started(task_id=None, task=None, **_) -> None:
    if task_id:
        _started[task_id] = time.perf_counter()


@task_postrun.connect(dispatch_uid="observability.task_finished")
def _task_finished(task_id=None, task=None, retval=None, state=None, **_) -> None:
    began = _started.pop(task_id, None)
    if task is None or began is None:
        return
    outcome = (state or "unknown").lower()
    instruments.TASK_DURATION.labels(task=task.name, outcome=outcome).observe(time.perf_counter() - began)
    if task.name == WEBHOOK_TASK:
        instruments.WEBHOOK_DELIVERIES.labels(outcome=_delivery_outcome(state, retval)).inc()


def _delivery_outcome(state: str | None, retval) -> str:
    """The delivery task returns its outcome; a retry raises (RETRY), a crash fails (error)."""
    if state == "RETRY":
        return "retry"
    if state == "SUCCESS" and str(retval) in WEBHOOK_OUTCOMES:
        return str(retval)
    return "error"


# store id -> slug, for events whose store was not loaded with them (slugs do not change).
_slugs: dict[int, str] = {}


def _store_slug(event) -> str:
    cached = event._state.fields_cache.get("store")
    if cached is not None:
        return cached.slug
    if event.store_id not in _slugs:
        from orderflow.core.tenancy import Store

        _slugs[event.store_id] = (
            Store.objects.filter(pk=event.store_id).values_list("slug", flat=True).first() or "-"
        )
    return _slugs[event.store_id]


@receiver(events_published, dispatch_uid="observability.count_events")
def _count_events(sender, events, **kwargs) -> None:
    """Never raises: a metric must not keep the other listeners (the live push) from the events."""
    try:
        for event in events:
            outcome = instruments.ORDER_OUTCOMES.get(event.topic)
            if outcome is not None:
                instruments.ORDERS.labels(store=_store_slug(event), outcome=outcome).inc()
            elif event.topic == ThresholdReached.topic and ThresholdReached.of(event).kind == "out_of_stock":
                instruments.STOCKOUTS.labels(store=_store_slug(event)).inc()
    except Exception:
        log.exception("counting published events failed")


@receiver(dispatcher_started, dispatch_uid="observability.tracing_on_dispatcher_start")
def trace_the_dispatcher(sender, **kwargs) -> None:
    """The outbox dispatcher's process traces its publishes (no-op unless OTEL_EXPORTER_OTLP_ENDPOINT)."""
    tracing.setup_tracing("outbox")


@receiver(dispatcher_stopped, dispatch_uid="observability.tracing_on_dispatcher_stop")
def flush_the_dispatchers_spans(sender, **kwargs) -> None:
    tracing.shutdown_tracing()
