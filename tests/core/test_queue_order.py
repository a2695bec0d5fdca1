"""A worker on several Redis queues takes them in the order it names them (broker.redis_transport_options):
under a burst the charges go before the warehouse steps, instead of round robin between them."""

from __future__ import annotations

import uuid

from django.conf import settings
from kombu import Connection, Consumer, Producer, Queue

from orderflow.core import broker


def _drain(conn: Connection, queues: list[Queue], n: int) -> list[str]:
    """Take `n` messages one at a time (prefetch 1, as the workers run), as a worker consuming
    `queues` in this order would."""
    got: list[str] = []

    def on_message(body, message):
        got.append(body)
        message.ack()

    with Consumer(conn, queues=queues, callbacks=[on_message], prefetch_count=1, accept=["json"]):
        while len(got) < n:
            conn.drain_events(timeout=5)
    return got


def _burst(options: dict) -> list[str]:
    """Five warehouse steps queued, then a burst of five charges; what a worker on (payments,
    fulfillment) with these transport options takes, in order."""
    tag = uuid.uuid4().hex[:8]  # queues of this test's own, in the test Redis database
    names = [f"order-test-{tag}-{name}" for name in ("payments", "fulfillment")]
    queues = [Queue(name) for name in names]
    with Connection(settings.REDIS_URL, transport_options=options) as conn:
        producer = Producer(conn)
        for q in queues:
            q(conn.default_channel).declare()
        for i in range(5):
            producer.publish(f"pick-{i}", routing_key=names[1], serializer="json")
        for i in range(5):
            producer.publish(f"charge-{i}", routing_key=names[0], serializer="json")
        try:
            return _drain(conn, queues, 10)
        finally:
            for q in queues:
                q(conn.default_channel).delete()


CHARGES = [f"charge-{i}" for i in range(5)]
PICKS = [f"pick-{i}" for i in range(5)]


def test_a_worker_on_several_queues_empties_the_first_before_the_next():
    assert _burst(broker.redis_transport_options(visibility_timeout=60)) == CHARGES + PICKS


def test_round_robin_would_interleave_them():
    """Without the option kombu alternates between the queues: the test above checks the option,
    not the order the messages were published in."""
    options = {**broker.redis_transport_options(visibility_timeout=60), "queue_order_strategy": "round_robin"}
    got = _burst(options)
    assert sorted(got) == sorted(CHARGES + PICKS) and got[:5] != CHARGES


def test_the_workers_run_with_it_on_redis():
    assert broker.redis_transport_options(visibility_timeout=60)["queue_order_strategy"] == "priority"
    if settings.BROKER_KIND == broker.REDIS:
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["queue_order_strategy"] == "priority"
    names = [q.name for q in settings.CELERY_TASK_QUEUES]
    assert names.index("payments") < names.index("fulfillment")
