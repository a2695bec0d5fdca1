"""The outbox dispatcher: committers only write events; the dispatcher,
woken by the trigger's NOTIFY at COMMIT, publishes them in batches — once each, only committed
ones, the rest kept while the broker is down."""

import threading
import time

import pytest
from django.db import transaction

from orderflow.core import outbox
from orderflow.core.events import Event, events_published, publish_unpublished, write_event
from tests.conftest import wait_until
from tests.core.test_outbox import _reset_producer_pools, broker  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True)]


def _listener():
    """A LISTEN connection opened exactly as the dispatcher opens its own."""
    return outbox._Listener()._connect()


def _notified(conn, timeout: float) -> int:
    return sum(1 for _ in conn.notifies(timeout=timeout))


def test_committing_process_leaves_publishing_to_the_dispatcher(store, broker):  # noqa: F811
    with transaction.atomic():
        event = write_event("test.outbox.created", store=store)
    event.refresh_from_db()
    assert event.published_at is None, "the committer publishes nothing"
    assert broker.queued() == 0
    assert outbox.dispatch_pending() == 1
    event.refresh_from_db()
    assert event.published_at is not None
    assert broker.queued() == 1
    assert outbox.dispatch_pending() == 0, "a published event is never sent again"
    assert broker.queued() == 1


def test_commit_notifies_the_dispatcher_once_and_a_rollback_never(store):
    conn = _listener()
    try:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                write_event("test.outbox.created", store=store)
                raise RuntimeError("rolled back")
        assert _notified(conn, 0.5) == 0
        with transaction.atomic():
            for i in range(5):
                write_event("test.outbox.created", store=store, data={"i": i})
        assert _notified(conn, 1.0) == 1, "one NOTIFY per committing transaction"
    finally:
        conn.close()


def test_a_batch_is_stamped_in_one_update_and_heard_live_as_one_batch(store, broker):  # noqa: F811
    heard: list[list[int]] = []

    def listener(sender, events, **kwargs):
        heard.append([e.pk for e in events])

    events_published.connect(listener, dispatch_uid="test-batch")
    try:
        with transaction.atomic():
            ids = [write_event("test.outbox.created", store=store, data={"i": i}).pk for i in range(30)]
        assert publish_unpublished(batch=100) == 30
    finally:
        events_published.disconnect(dispatch_uid="test-batch")
    stamps = set(Event.all_stores.filter(pk__in=ids).values_list("published_at", flat=True))
    assert len(stamps) == 1 and None not in stamps
    assert heard == [ids]
    assert broker.queued() == 30


def test_broker_down_the_dispatcher_keeps_the_rest_and_sends_it_once_back(store, broker):  # noqa: F811
    broker.stop()
    with transaction.atomic():
        for i in range(3):
            write_event("test.outbox.created", store=store, data={"i": i})
    assert outbox.dispatch_pending() == 0
    assert Event.all_stores.filter(published_at__isnull=True).count() == 3
    broker.start()
    _reset_producer_pools()
    assert outbox.dispatch_pending() == 3
    assert outbox.dispatch_pending() == 0
    assert broker.queued() == 3


def test_running_dispatcher_is_woken_by_the_commit_not_by_its_poll(store, broker):  # noqa: F811
    stop = threading.Event()
    thread = threading.Thread(target=outbox.run, kwargs={"stop": stop, "poll": 30.0}, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # it is now waiting on LISTEN for up to 30 s
        started = time.monotonic()
        with transaction.atomic():
            event = write_event("test.outbox.created", store=store)
        wait_until(
            lambda: Event.all_stores.filter(pk=event.pk, published_at__isnull=False).exists(),
            10,
            message="the dispatcher publishing the committed event",
        )
        assert time.monotonic() - started < 5, "NOTIFY, not the 30 s poll, woke it"
        assert broker.queued() == 1
    finally:
        stop.set()
        thread.join(35)
    assert not thread.is_alive()
