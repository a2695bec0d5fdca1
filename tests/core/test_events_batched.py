"""`events.batched()`: the events of a block are written together, in one INSERT, inside the
caller's transaction — in the order they were emitted, and exactly as if written one by one when
the block fails."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from orderflow.core.events import Event, atomic_with_events, batched, on_event, write_event

pytestmark = pytest.mark.django_db

SEEN: list[tuple[str, object]] = []


@on_event("test.batched.inline", inline=True, name="tests.batched_inline")
def _inline(event):
    SEEN.append((event.topic, event.pk))
    write_event("test.batched.followup", store=event.store)


def _event_inserts(queries) -> int:
    return sum(q["sql"].startswith('INSERT INTO "core_event"') for q in queries)


def _topics(store) -> list[str]:
    return list(
        Event.all_stores.filter(store=store, topic__startswith="test.batched").values_list("topic", flat=True)
    )


def test_a_block_writes_its_events_in_one_insert_in_the_order_emitted(store):
    with transaction.atomic(), CaptureQueriesContext(connection) as sql:
        with batched():
            first = write_event("test.batched.a", store=store, data={"n": 1})
            write_event("test.batched.b", store=store)
            write_event("test.batched.c", store=store)
            assert first.pk is None and _event_inserts(sql.captured_queries) == 0
        assert _event_inserts(sql.captured_queries) == 1
    assert first.pk is not None
    assert _topics(store) == ["test.batched.a", "test.batched.b", "test.batched.c"]
    assert Event.all_stores.get(pk=first.pk).data == {"n": 1}


def test_an_inline_handler_runs_at_emit_and_its_events_join_the_batch(store):
    SEEN.clear()
    with transaction.atomic(), batched():
        write_event("test.batched.inline", store=store)
        assert SEEN == [("test.batched.inline", None)]  # ran at once, before the INSERT
    assert _topics(store) == ["test.batched.inline", "test.batched.followup"]


def test_a_nested_block_joins_the_outer_one(store):
    with transaction.atomic(), CaptureQueriesContext(connection) as sql:
        with batched():
            write_event("test.batched.a", store=store)
            with batched():
                write_event("test.batched.b", store=store)
            assert _event_inserts(sql.captured_queries) == 0
        assert _event_inserts(sql.captured_queries) == 1
    assert _topics(store) == ["test.batched.a", "test.batched.b"]


def test_an_error_the_transaction_survives_keeps_the_events_emitted_before_it(store):
    with transaction.atomic():
        with pytest.raises(ValueError):
            with batched():
                write_event("test.batched.a", store=store)
                raise ValueError("caught by the caller, inside the transaction")
        write_event("test.batched.b", store=store)
    assert _topics(store) == ["test.batched.a", "test.batched.b"]


def test_a_rolled_back_transaction_writes_none_of_its_events(store):
    with pytest.raises(DatabaseError):
        with transaction.atomic(), batched():
            write_event("test.batched.a", store=store)
            with connection.cursor() as cur:
                cur.execute("SELECT 1/0")
    assert _topics(store) == []


def test_without_a_block_each_event_is_written_at_once(store):
    with transaction.atomic():
        event = write_event("test.batched.a", store=store)
        assert event.pk is not None


def test_an_event_inside_a_savepoint_is_written_at_once_after_what_the_block_held(store):
    with transaction.atomic(), batched():
        held = write_event("test.batched.a", store=store)
        with transaction.atomic():  # a savepoint: its events go (and roll back) with it
            inner = write_event("test.batched.b", store=store)
            assert inner.pk is not None and held.pk is not None and held.pk < inner.pk
        write_event("test.batched.c", store=store)
        with transaction.atomic(savepoint=False):  # no savepoint: still held
            last = write_event("test.batched.d", store=store)
            assert last.pk is None
    assert _topics(store) == ["test.batched.a", "test.batched.b", "test.batched.c", "test.batched.d"]


def test_a_savepoint_that_rolls_back_takes_its_events_with_it(store):
    with transaction.atomic(), batched():
        with pytest.raises(ValueError):
            with transaction.atomic():
                write_event("test.batched.undone", store=store)
                raise ValueError("the savepoint rolls back")
        write_event("test.batched.kept", store=store)
    assert _topics(store) == ["test.batched.kept"]


@pytest.mark.django_db(transaction=True)
def test_a_block_outside_a_transaction_is_refused(store):
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        with batched():
            pass


@atomic_with_events()
def _emit_three(store):
    for name in ("a", "b", "c"):
        write_event(f"test.batched.{name}", store=store)


def test_atomic_with_events_is_a_transaction_and_a_batch(store):
    with CaptureQueriesContext(connection) as sql:
        _emit_three(store)
    assert _event_inserts(sql.captured_queries) == 1
    assert _topics(store) == ["test.batched.a", "test.batched.b", "test.batched.c"]
