"""The cluster's shared state, read at scrape time: the same figures from whichever process is
scraped (dashboards and alerts take `max` over instances).

Bounded cost per scrape (about 10 ms, measured with a million events): one passive queue declare
per Celery queue on a pooled broker connection (on Redis: an LLEN per priority level of the queue,
as kombu counts it; on RabbitMQ: the broker's message count), two queries on the event table's
partial index of unpublished rows, and three Redis reads of the breaker. A part that cannot be
read (its server is down) is left out of the answer and reported as
`orderflow_metrics_collector_up{part=...} 0`, so one down dependency never fails the scrape.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# More unpublished events than this are reported as this many: the count stays an index scan of
# bounded length even in an outage's backlog (the age of the oldest still tells the lag).
OUTBOX_COUNT_CAP = 1_000_000
BREAKER_STATES = ("closed", "open", "half_open", "unknown")


def queue_names() -> list[str]:
    return [q.name for q in settings.CELERY_TASK_QUEUES]


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue, read through the broker URL (CELERY_BROKER_URL) on a
    connection of the app's broker pool (the one publishing uses: no new connection per scrape)."""
    from celery import current_app as app  # the project's app (the wiring is never imported here)

    from orderflow.core import broker

    with app.pool.acquire(block=True, timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return broker.waiting(conn, queue_names())


def outbox_backlog() -> tuple[int, float]:
    """(unpublished events, age in seconds of the oldest), both from the partial index."""
    from orderflow.core.events import Event

    unpublished = Event.all_stores.filter(published_at__isnull=True).order_by()
    count = unpublished.values("pk")[:OUTBOX_COUNT_CAP].count()
    oldest = unpublished.order_by("created_at").values_list("created_at", flat=True).first()
    age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
    return count, age


def breaker() -> dict:
    from payments import breaker as gateway_breaker

    return {**gateway_breaker.state(), "in_flight": gateway_breaker.slots_in_use()}


class ClusterCollector(Collector):
    def collect(self):
        up = GaugeMetricFamily(
            "orderflow_metrics_collector_up",
            "1 if this part of the cluster's state could be read at this scrape, else 0.",
            labels=["part"],
        )
        for part, read in (("queues", self._queues), ("outbox", self._outbox), ("breaker", self._breaker)):
            started = time.perf_counter()
            try:
                families = list(read())
            except Exception:
                log.exception("metrics: reading %s failed", part)
                up.add_metric([part], 0)
                continue
            log.debug("metrics: %s read in %.1f ms", part, (time.perf_counter() - started) * 1000)
            up.add_metric([part], 1)
            yield from families
        yield up

    def _queues(self):
        depth = GaugeMetricFamily(
            "orderflow_queue_messages", "Messages waiting in a Celery queue (not yet taken by a worker).",
            labels=["queue"],
        )  # fmt: skip
        for name, n in queue_depths().items():
            depth.add_metric([name], n)
        yield depth

    def _outbox(self):
        count, age = outbox_backlog()
        yield GaugeMetricFamily(
            "orderflow_outbox_unpublished_events",
            f"Committed events not yet published to their handlers (capped at {OUTBOX_COUNT_CAP}).",
            value=count,
        )
        yield GaugeMetricFamily(
            "orderflow_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished event: the outbox's publish lag (0 when none waits).",
            value=age,
        )

    def _breaker(self):
        info = breaker()
        state = GaugeMetricFamily(
            "orderflow_breaker_state",
            "The payment gateway's circuit breaker: 1 for its current state (closed, open, "
            "half_open; unknown when Redis cannot be read), 0 for the others.",
            labels=["state"],
        )
        for name in BREAKER_STATES:
            state.add_metric([name], 1 if info["state"] == name else 0)
        yield state
        yield GaugeMetricFamily(
            "orderflow_breaker_consecutive_failures",
            "Consecutive gateway failures the breaker has counted (it opens at the threshold).",
            value=info["failures"] or 0,
        )
        yield GaugeMetricFamily(
            "orderflow_gateway_calls_in_flight",
            "Gateway calls holding a slot of the concurrency semaphore (GATEWAY_MAX_CONCURRENT_CALLS).",
            value=info["in_flight"],
        )
