"""The outbox dispatcher: one process that publishes every committed event, in batches.

Requests and tasks only write their events (emit() in their own
transaction) and go on; this process sends them. A trigger on the event table NOTIFYs channel
`orderflow_outbox` when a transaction that inserted events commits (PostgreSQL delivers it at
COMMIT, never for a rollback), the dispatcher wakes, takes the unpublished rows oldest first with
FOR UPDATE SKIP LOCKED, sends each handler its Celery message, stamps the whole batch published in
one UPDATE and pushes it to the live dashboards with one channel-layer send per store.

Why a process of its own: published inline, every event cost the committing request or task a
Celery publish per handler, a live push and an autocommit `published_at` UPDATE (17 events, so 17
extra transactions, per order). Batched here, the stamp and the push are paid once per batch.

Nothing is lost or sent twice by this: a row is stamped only after its messages went out, in the
transaction that holds its lock; a dispatcher that dies mid-batch leaves its rows unstamped (they
are sent again, and handlers run at most once per event); SKIP LOCKED lets a second dispatcher,
or beat's relay (still scheduled, as a backstop if no dispatcher runs), work beside it. No NOTIFY
(SQLite, a dropped LISTEN connection) only costs latency: it also looks every
OUTBOX_DISPATCH_POLL_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.dispatch import Signal

from .events import publish_unpublished

log = logging.getLogger("orderflow.outbox")

CHANNEL = "orderflow_outbox"

# Sent by the dispatcher process as it starts and as it stops (`manage.py run_outbox`), so what
# runs per process — the tracing setup and its final flush (orderflow.observability) — listens
# instead of being imported here.
dispatcher_started = Signal()
dispatcher_stopped = Signal()


def dispatch_pending(*, batch: int | None = None) -> int:
    """Publish everything committed and unpublished, batch by batch; how many were sent.

    Stops early when a batch could not be sent whole (the broker is down): the rest waits."""
    size = batch or settings.OUTBOX_DISPATCH_BATCH
    total = 0
    while True:
        n = publish_unpublished(batch=size)
        total += n
        if n < size:
            return total


class _Listener:
    """A LISTEN connection of its own (Django's connection runs the batches): blocks until a
    NOTIFY arrives or the poll interval passes. Reconnects when the server drops it."""

    def __init__(self) -> None:
        self.conn = None

    def _connect(self):
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        conn = psycopg.connect(**params, autocommit=True)
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def wait(self, timeout: float, stop: threading.Event | None = None) -> None:
        """Until a NOTIFY, `timeout` or `stop` (checked every half second)."""
        deadline = time.monotonic() + timeout
        while stop is None or not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if connection.vendor != "postgresql":
                time.sleep(min(left, 0.5))
                continue
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = self._connect()
                for _ in self.conn.notifies(timeout=min(left, 0.5), stop_after=1):
                    return
            except Exception as exc:  # server restart, dropped connection: poll until it is back
                log.warning("outbox LISTEN connection lost (%s); polling", exc)
                self.close()
                time.sleep(min(left, 1.0))

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None


def run(*, stop: threading.Event | None = None, poll: float | None = None) -> None:
    """The dispatcher's loop, until `stop` is set (or for ever). Database and broker faults are
    logged and waited out; they never end the loop."""
    poll = settings.OUTBOX_DISPATCH_POLL_SECONDS if poll is None else poll
    linger = settings.OUTBOX_DISPATCH_LINGER_MS / 1000
    listener = _Listener()
    backoff = 0.0
    log.info("outbox dispatcher started (batch %s, poll %ss)", settings.OUTBOX_DISPATCH_BATCH, poll)
    try:
        while stop is None or not stop.is_set():
            try:
                close_old_connections()
                dispatch_pending()
                backoff = 0.0
            except (OperationalError, InterfaceError) as exc:  # PostgreSQL away: reconnect later
                log.warning("outbox dispatch failed, retrying: %s", exc)
                connection.close()
                backoff = min(max(backoff * 2, 0.2), 5.0)
                time.sleep(backoff)
                continue
            except Exception:
                log.exception("outbox dispatch failed")
                time.sleep(1.0)
                continue
            listener.wait(poll, stop)
            if linger:  # let the burst that woke us commit, so one batch carries it
                time.sleep(linger)
    finally:
        listener.close()
        connection.close()
        log.info("outbox dispatcher stopped")
