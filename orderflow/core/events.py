"""Domain events: the audit log, the timeline and the outbox in one table.

`emit()` inserts the row inside the caller's transaction and runs the *inline* handlers there
(work that must commit or roll back with the state the event describes: a paid order's pick list
is opened in the transaction that records the payment). Nothing leaves the process before COMMIT,
so a rolled-back order never triggers a payment. After commit the event is published: every
other handler that wants it gets one Celery message — the handler *is* the task (one task per
handler, named after it, on the handler's queue), so an event costs one hop per handler and no
relay. The in-process `events_published` signal fires (live push) and the row is marked
`published_at`. Who publishes: one path, in production and in the tests alike — the outbox
dispatcher process, in batches (orderflow/core/outbox.py), with beat's relay as the backstop. If
the broker is down the row stays unpublished and is sent later. Handlers run at most once per event:
`HandledEvent` records (event, handler) in the handler's own transaction.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Self

from celery import shared_task
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.dispatch import Signal
from django.utils import timezone

from . import topics
from .tenancy import Store, TenantModel, use_store

log = logging.getLogger("orderflow.events")

# Fired in the publishing process (the dispatcher, or beat's relay) after a batch of events is
# sent, with `events=` (the batch). The dashboard's live push listens.
events_published = Signal()

# Tracing hooks, set by orderflow/observability/tracing.py when tracing is on (None: off, no cost).
# `trace_capture()` gives the current span's W3C traceparent, stored on the event by `emit()`;
# `trace_resume(traceparent)` makes it current while the event's handler messages are published, so
# a handler's task joins the trace of the request or task that emitted the event.
trace_capture: Callable[[], str | None] | None = None
trace_resume: Callable[[str], AbstractContextManager] | None = None


class Event(TenantModel):
    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=100)
    subject_type = models.CharField(max_length=50, blank=True, default="")
    subject_id = models.CharField(max_length=64, blank=True, default="")
    order_id = models.UUIDField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    actor = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    # The emitting span's W3C traceparent when tracing is on (orderflow/observability/tracing.py).
    trace_context = models.CharField(max_length=128, null=True, blank=True, editable=False)

    class Meta(TenantModel.Meta):
        ordering = ["id"]
        indexes = [
            models.Index(fields=["store", "order_id", "id"], name="event_store_order"),
            models.Index(fields=["store", "topic", "created_at"], name="event_store_topic_time"),
            models.Index(fields=["store", "created_at"], name="event_store_time"),
            models.Index(
                fields=["created_at"], name="event_unpublished", condition=models.Q(published_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk}"

    @property
    def payload(self) -> EventPayload:
        """The typed payload of this event (its registered class, read back from `data`)."""
        return topics.TOPICS[self.topic].payload.of(self)

    def as_message(self) -> dict[str, Any]:
        """The event as JSON for pushes and webhooks."""
        return {
            "id": self.pk,
            "topic": self.topic,
            "store": self.store.slug if self.store_id else None,
            "subject": {"type": self.subject_type, "id": self.subject_id},
            "order_id": str(self.order_id) if self.order_id else None,
            "data": self.data,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
        }


class HandledEvent(models.Model):
    """(event, handler) pairs already run: a redelivered message finds its row and does nothing."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="handled_by")
    handler = models.CharField(max_length=100)
    handled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "handler"], name="handled_event_once")]

    def __str__(self) -> str:
        return f"{self.handler} ran event {self.event_id}"


# ------------------------------------------------------------------------------ payloads


def optional(default: Any = None) -> Any:
    """A payload field that some emits leave out: left out of `data` while it is None."""
    return dataclasses.field(default=default, metadata={"omit_none": True})


def renamed(key: str, default: Any = None, *, omit_none: bool = False) -> Any:
    """A payload field stored under another key (`from`, a Python keyword)."""
    return dataclasses.field(default=default, metadata={"key": key, "omit_none": omit_none})


@functools.cache
def _field_keys(cls: type) -> list[tuple[dataclasses.Field, str]]:
    return [(f, f.metadata.get("key", f.name)) for f in dataclasses.fields(cls)]


@dataclass(frozen=True, kw_only=True)
class EventPayload:
    """One topic's payload, typed: subclasses in each app's `events.py` are frozen dataclasses that
    declare `topic`, `step` (the workflow column) and, when the topic lands in a state box, `box`
    (`<prefix>.<state>`), and register into `orderflow.core.topics` when defined. `emit(payload,
    ...)` stores `as_data()` as the event's `data`; a listener gets the dataclass back with
    `SomeEvent.of(event)` (or `event.payload`).

    Absent fields: rows written before a field existed (or by an emit that leaves an `optional()`
    field out) lack its key; `of()` then gives the field's default, so the default is what an
    absent field means — None "not known", never a made-up value. Keys a class does not declare
    are ignored by `of()`; the stored JSON keeps the keys the emitters always wrote (a field's key
    is its name unless `renamed()`)."""

    topic: ClassVar[str]
    step: ClassVar[str]
    box: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "topic" in cls.__dict__:
            topics.register(topics.Topic(cls.topic, cls.step, cls.box, cls))

    @classmethod
    def _keys(cls) -> list[tuple[dataclasses.Field, str]]:
        return _field_keys(cls)

    @classmethod
    def data_keys(cls) -> frozenset[str]:
        """The keys its `data` may hold."""
        return frozenset(key for _, key in _field_keys(cls))

    def as_data(self) -> dict[str, Any]:
        """The event's `data`: one key per field (an `optional()` one only when set)."""
        data = {}
        for f, key in self._keys():
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            data[key] = value
        return data

    @classmethod
    def accepts(cls, topic: str) -> bool:
        return topic == getattr(cls, "topic", None)

    @classmethod
    def of(cls, event: Event) -> Self:
        """The payload of a stored event of this class's topic (absent keys: the defaults)."""
        if not cls.accepts(event.topic):
            raise ValueError(f"{cls.__name__} does not describe {event.topic} events")
        data = event.data or {}
        return cls(**{f.name: data[key] for f, key in cls._keys() if key in data})


@dataclass(frozen=True, kw_only=True)
class StateChange(EventPayload):
    """The payload of a move of a state machine: `from`, `to`, `reason` (filled in by
    `transition()`), and the fields the machine's moves add. A model's `EVENT_PAYLOAD` (a subclass
    with `machine` = its prefix) describes its `<prefix>.<state>` topics; a move that names its
    own topic passes an instance of that topic's subclass (`transition(..., event=...)`)."""

    machine: ClassVar[str | None] = None

    from_state: str | None = renamed("from", omit_none=True)
    to: str | None = optional()
    reason: str | None = optional()

    @classmethod
    def accepts(cls, topic: str) -> bool:
        if cls.machine is not None:
            known = topics.TOPICS.get(topic)
            return known is not None and known.payload is cls
        return super().accepts(topic)


# ------------------------------------------------------------------------------ handlers


@dataclass(frozen=True)
class Handler:
    name: str
    topics: tuple[str, ...]
    func: Callable[[Event], Any]
    queue: str
    atomic: bool
    when: Callable[[Event], bool] | None = None
    inline: bool = False
    task: Any = None  # the Celery task that runs it (None for an inline handler)

    def wants(self, topic: str) -> bool:
        return any(fnmatch.fnmatchcase(topic, pattern) for pattern in self.topics)

    def wanted_for(self, event: Event) -> bool:
        """The publish-time filter; if it cannot answer, the message goes (the handler decides)."""
        if self.when is None:
            return True
        try:
            return bool(self.when(event))
        except Exception:
            log.exception("publish filter of %s failed for event %s; sending it", self.name, event.pk)
            return True


_HANDLERS: dict[str, Handler] = {}


def _handler_task(handler_name: str):
    """The Celery task of one handler: the message carries the event id, the task runs the handler
    at most once for it. Failures are retried with backoff (a handler that must say how long to
    wait — the charge — enqueues its own follow-up instead of raising)."""

    @shared_task(
        name=handler_name,
        acks_late=True,
        ignore_result=True,
        autoretry_for=(Exception,),
        retry_backoff=1,
        retry_backoff_max=60,
        retry_jitter=True,
        max_retries=8,
    )
    def handle(event_id: int) -> bool:
        return run_handler_once(event_id, handler_name)

    return handle


def on_event(
    *topics: str,
    queue: str = "default",
    name: str | None = None,
    atomic: bool = True,
    when: Callable[[Event], bool] | None = None,
    inline: bool = False,
):
    """Register `func(event)` for every event matching `topics` (fnmatch patterns: "order.*").

    By default it runs in a worker after the event's transaction commits, as its own Celery task
    (named after the handler, on `queue`). `atomic` runs it in one transaction with its
    HandledEvent row; a handler that calls the outside world should say atomic=False and be
    idempotent itself. `when(event)`, if given, is asked in the publishing process before the
    message is sent: a handler that has nothing to do for most events (the webhook fan-out of a
    store without endpoints) then costs no Celery message and no task. It must be cheap and
    side-effect free.

    `inline=True` runs it inside `emit()`, in the emitter's transaction: what it writes commits or
    rolls back with the state the event describes, and costs no message at all. Only for short
    database work of the next step that must not be lost between two transactions; it never calls
    the outside world, and an exception in it fails the emitter's transaction. It may use
    `event.emitted_subject`, the instance the emitter passed (locked by it), instead of reading it
    again."""

    def register(func: Callable[[Event], Any]):
        handler_name = name or f"{func.__module__}.{func.__name__}"
        task = None if inline else _handler_task(handler_name)
        handler = Handler(handler_name, tuple(topics), func, queue, atomic, when, inline, task)
        _HANDLERS[handler_name] = handler
        _BY_TOPIC.clear()
        _INLINE_BY_TOPIC.clear()
        return func

    return register


_BY_TOPIC: dict[str, list[Handler]] = {}


_INLINE_BY_TOPIC: dict[str, list[Handler]] = {}


def handlers_for(topic: str) -> list[Handler]:
    """The handlers run after commit whose patterns match the topic (memoised: the registry is
    fixed after import)."""
    found = _BY_TOPIC.get(topic)
    if found is None:
        found = _BY_TOPIC[topic] = [h for h in _HANDLERS.values() if not h.inline and h.wants(topic)]
    return found


def inline_handlers_for(topic: str) -> list[Handler]:
    """The handlers run inside `emit()` for the topic."""
    found = _INLINE_BY_TOPIC.get(topic)
    if found is None:
        found = _INLINE_BY_TOPIC[topic] = [h for h in _HANDLERS.values() if h.inline and h.wants(topic)]
    return found


def registered_handlers() -> dict[str, Handler]:
    return dict(_HANDLERS)


# --------------------------------------------------------------------------------- emit


def emit(
    payload: EventPayload,
    *,
    store: Store,
    order_id: uuid.UUID | str | None = None,
    subject: models.Model | None = None,
    subject_type: str = "",
    subject_id: str = "",
    actor: str = "",
) -> Event:
    """Write the typed event `payload` (its topic, its data) in the caller's transaction; the
    outbox dispatcher publishes it after that transaction commits (a trigger on the table wakes
    it at COMMIT: orderflow/core/outbox.py)."""
    return write_event(
        payload.topic,
        store=store,
        order_id=order_id,
        subject=subject,
        subject_type=subject_type,
        subject_id=subject_id,
        data=payload.as_data(),
        actor=actor,
    )


def write_event(
    topic: str,
    *,
    store: Store,
    order_id: uuid.UUID | str | None = None,
    subject: models.Model | None = None,
    subject_type: str = "",
    subject_id: str = "",
    data: dict[str, Any] | None = None,
    actor: str = "",
) -> Event:
    """`emit()` by topic name and data as stored. Only for what has no payload instance to pass:
    `transition()`'s `<prefix>.<state>` topics (their data is checked against the machine's
    `EVENT_PAYLOAD` there), and tests that write rows as older code stored them. The row is
    written in the caller's transaction; the outbox dispatcher publishes it after that transaction
    commits (a trigger on the table wakes it at COMMIT: orderflow/core/outbox.py)."""
    if subject is not None:
        subject_type = subject_type or subject._meta.model_name
        subject_id = subject_id or str(subject.pk)
    event = Event(
        store=store,
        topic=topic,
        subject_type=subject_type,
        subject_id=subject_id,
        order_id=order_id,
        data=data or {},
        actor=actor,
        trace_context=trace_capture() if trace_capture is not None else None,
    )
    batch = _PENDING.get()
    if batch is None:
        event.save(force_insert=True)
    elif batch.depth == _savepoints():
        batch.events.append(event)  # INSERTed with the rest of its batch (see `batched`)
    else:  # inside a savepoint opened within the batch: written now, after what the batch holds
        batch.flush()
        event.save(force_insert=True)
    event.emitted_subject = subject  # for inline handlers: the emitter's (locked) instance, not stored
    for handler in inline_handlers_for(topic):
        handler.func(event)
    return event


@dataclass
class _Batch:
    events: list[Event]
    depth: int  # the savepoints open when the batch began: an event inside a newer one is not held

    def flush(self) -> None:
        if self.events:
            Event.all_stores.bulk_create(self.events)
            self.events = []


def _savepoints() -> int:
    """Savepoints open on the connection (Django notes an atomic block without one as None)."""
    return sum(1 for sid in connection.savepoint_ids if sid is not None)


_PENDING: ContextVar[_Batch | None] = ContextVar("orderflow_pending_events", default=None)


@contextmanager
def batched() -> Iterator[None]:
    """Inside `transaction.atomic()`: the events emitted in this block are INSERTed together, in
    one statement, as it ends — still in the caller's transaction, so they commit or roll back
    with the state they describe, in the order they were emitted. For a transaction that emits
    several: a charge's outcome emits five (payment, order paid, pick list, order fulfilling,
    stock), one round trip instead of five. A nested block joins the outer one.

    An event emitted inside a savepoint opened within the block (a nested `transaction.atomic()`)
    is written at once, after what the block held so far (the ids keep the order emitted): if
    that savepoint rolls back, the event goes with it, and so do the held ones written with it —
    so inside a batched block, an exception out of a nested atomic block is not caught and gone
    on from. Until the block ends a held event has no id (inline handlers still run at `emit()`
    and get the instance). Whatever ends the block, what it held is written, as it would have
    been unbatched: an exception the transaction survives (caught outside this block) keeps the
    events of the work done before it; one that aborts the transaction loses them with that work."""
    if _PENDING.get() is not None:
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("events.batched() belongs inside transaction.atomic()")
    batch = _Batch(events=[], depth=_savepoints())
    token = _PENDING.set(batch)
    try:
        yield
    except BaseException:
        _PENDING.reset(token)
        if batch.events and not connection.needs_rollback:
            try:
                batch.flush()
            except Exception:  # the transaction is aborted: the original error is the one to see
                log.debug("events of a failed block not written", exc_info=True)
        raise
    _PENDING.reset(token)
    batch.flush()


@contextmanager
def atomic_with_events() -> Iterator[None]:
    """`transaction.atomic()` whose events are written in one INSERT as it ends (`batched`): for a
    service's transaction that emits several. A decorator too."""
    with transaction.atomic(), batched():
        yield


def send_to_handlers(event: Event) -> None:
    """One Celery message per handler that wants the event: its own task. Raises if the broker
    refuses. A traced event's context goes in the message headers (and is current while they are
    sent, for the Celery instrumentation's publish span)."""
    headers = {"traceparent": event.trace_context} if event.trace_context else None
    resume = trace_resume(event.trace_context) if headers and trace_resume is not None else nullcontext()
    with resume:
        for handler in handlers_for(event.topic):
            if handler.wanted_for(event):
                handler.task.apply_async(args=[event.pk], queue=handler.queue, headers=headers)


def notify_live(events: list[Event]) -> None:
    """Tell in-process listeners (the dashboard's live push) about published events; best-effort."""
    if not events:
        return
    try:
        events_published.send(sender=Event, events=events)
    except Exception:  # live listeners are best-effort; never block the outbox on them
        log.exception("events_published listener failed for events %s..", events[0].pk)


def publish_unpublished(*, batch: int, older_than_seconds: float = 0.0) -> int:
    """Publish up to `batch` committed events nobody has published yet, oldest first; the count sent.

    The rows are taken with FOR UPDATE SKIP LOCKED, so two publishers (the dispatcher, the beat
    relay, a second dispatcher) never send the same one; sending stops at the first broker
    failure and only what went out is stamped — in one UPDATE for the whole batch. Live listeners
    hear of the batch after COMMIT, so no row lock is held while they push."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    sent: list[Event] = []
    memo = _BATCH_MEMO.set({})  # the publish filters' lookups, once per batch (once_per_batch)
    try:
        with transaction.atomic():
            rows = list(
                Event.all_stores.select_related("store")
                .filter(published_at__isnull=True, created_at__lte=cutoff)
                .order_by("id")
                .select_for_update(skip_locked=True, of=("self",))[:batch]
            )
            for event in rows:
                try:
                    send_to_handlers(event)
                except Exception as exc:  # broker down: stop, the rest stays for the next round
                    log.warning(
                        "publish of event %s (%s) failed, left for later: %s", event.pk, event.topic, exc
                    )
                    break
                sent.append(event)
            if sent:
                Event.all_stores.filter(pk__in=[e.pk for e in sent]).update(published_at=timezone.now())
    finally:
        _BATCH_MEMO.reset(memo)
    notify_live(sent)
    return len(sent)


_BATCH_MEMO: ContextVar[dict | None] = ContextVar("orderflow_publish_memo", default=None)


def once_per_batch(key: Any, compute: Callable[[], Any]) -> Any:
    """For a publish-time filter: `compute()` once per publish batch for `key` (a store's webhook
    endpoints are read once for the batch's events of that store, not once per event); outside a
    batch, every call computes. The batch's events were all committed before it began."""
    memo = _BATCH_MEMO.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def relay_unpublished(*, older_than_seconds: float, batch: int) -> int:
    """Beat's relay: publish events a crash or a broker outage left behind for a while."""
    return publish_unpublished(batch=batch, older_than_seconds=older_than_seconds)


def run_handler_once(event_id: int, handler_name: str) -> bool:
    """Run one handler for one event, at most once. Returns False when it had already run."""
    handler = _HANDLERS.get(handler_name)
    if handler is None:
        log.error("no handler %s registered (event %s)", handler_name, event_id)
        return False
    # one read for the event, its store and whether this handler already ran it
    done = HandledEvent.objects.filter(event=models.OuterRef("pk"), handler=handler_name)
    event = (
        Event.all_stores.select_related("store")
        .annotate(done=models.Exists(done))
        .filter(pk=event_id)
        .first()
    )
    if event is None:
        log.warning("event %s is gone; handler %s skipped", event_id, handler_name)
        return False
    with use_store(event.store):
        if handler.atomic:
            with transaction.atomic():
                if not _mark_handled(event.pk, handler_name):
                    return False
                handler.func(event)
            return True
        if event.done:
            return False
        handler.func(event)
        _mark_handled(event.pk, handler_name)
        return True


_HANDLED_AT = HandledEvent._meta.get_field("handled_at")


def _mark_handled(event_id: int, handler_name: str) -> bool:
    """Record (event, handler); False if it was already there. One INSERT ... ON CONFLICT DO
    NOTHING: no savepoint to catch an IntegrityError with, and a concurrent twin waits on the
    unique index until the first commits or rolls back."""
    table = connection.ops.quote_name(HandledEvent._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"INSERT INTO {table} (event_id, handler, handled_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (event_id, handler) DO NOTHING",
            [event_id, handler_name, _HANDLED_AT.get_db_prep_save(timezone.now(), connection)],
        )
        return cur.rowcount == 1
