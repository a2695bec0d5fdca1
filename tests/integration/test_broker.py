"""The broker the session runs on (Redis, or RabbitMQ with TEST_BROKER=rabbitmq): the queues it
declares, and countdowns that really fire — on RabbitMQ's quorum queues they travel through
Celery's native delayed delivery, which refuses a countdown under a second unless rounded up."""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings

from orderflow.celery import app
from orderflow.core import broker
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def _succeeded_at(worker, task_id: str) -> bool:
    return bool(re.search(rf"Task payments\.probe_gateway\[{task_id}\] succeeded", worker.output()))


@pytest.mark.parametrize("countdown", [0.3, 1.5], ids=["under-a-second", "seconds"])
def test_a_task_with_a_countdown_runs_once_after_it(celery_worker, countdown):
    started = time.monotonic()
    task_id = app.send_task("payments.probe_gateway", countdown=countdown).id
    wait_until(lambda: _succeeded_at(celery_worker, task_id), 20, every=0.05, message="the delayed task ran")
    took = time.monotonic() - started
    assert took >= countdown, f"ran after {took:.2f}s, before its {countdown}s countdown"
    if settings.BROKER_KIND == broker.RABBITMQ:  # held by RabbitMQ for whole seconds, rounded up
        assert took >= 1.0
    time.sleep(1.0)
    assert celery_worker.output().count(f"[{task_id}] succeeded") == 1


def test_the_queues_are_the_brokers_own_kind(celery_worker):
    """Redis: plain lists. RabbitMQ: durable quorum queues, each on its own topic exchange (the
    native delayed delivery cannot route through a direct one)."""
    queues = {q.name: q for q in settings.CELERY_TASK_QUEUES}
    assert set(queues) == {"default", "orders", "payments", "fulfillment", "webhooks"}
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name, queue in queues.items():
            if settings.BROKER_KIND == broker.RABBITMQ:
                channel.queue_declare(queue=name, passive=True)  # the worker declared every one
                assert queue.durable and queue.queue_arguments == {"x-queue-type": "quorum"}
                assert queue.exchange.type == "topic" and queue.routing_key == name
                # declaring it again with other arguments is refused: the broker has it as quorum
                with pytest.raises(conn.channel_errors):
                    conn.channel().queue_declare(
                        queue=name, durable=True, arguments={"x-queue-type": "classic"}
                    )
            else:
                assert not queue.queue_arguments  # a plain list per queue


def _purge(queue: str) -> None:
    with app.connection_for_write() as conn, conn.channel() as channel:
        try:
            channel.queue_purge(queue)
        except conn.channel_errors:  # RabbitMQ: not declared yet, nothing in it
            pass


def test_the_reconcilers_backlog_and_the_queue_gauge_count_what_waits_on_this_broker(db):
    """Both read the broker through core/broker.waiting: messages waiting, 0 for a queue the broker
    does not have (on RabbitMQ that 404 closes the channel; the next queue must still be read)."""
    from orderflow.core.reconcile import broker_backlog
    from orderflow.observability.cluster import queue_depths

    _purge("webhooks")
    try:
        for _ in range(3):  # nobody consumes: no worker runs in this test
            app.send_task("payments.probe_gateway", queue="webhooks")
        wait_until(lambda: broker_backlog("no-such-queue", "webhooks") == 3, 5, message="3 waiting")
        assert queue_depths()["webhooks"] == 3
        assert broker_backlog("no-such-queue") == 0
    finally:
        _purge("webhooks")
    assert broker_backlog("webhooks") == 0
