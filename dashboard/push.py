"""Live push to browsers: one Channels group per store (and one per user) on the Redis channel
layer, and the messages the sockets understand.

Runs in whatever process published (the web process after a request commits, a worker, or the
outbox dispatcher for a whole batch), so it must be cheap and must never raise into the
publisher: every failure is logged and swallowed. This module only sends: what is pushed when
events are published is receivers.py's, the throttled stats push is tasks.py's.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from channels.layers import get_channel_layer

from orderflow.core.events import Event

log = logging.getLogger("orderflow.dashboard.push")


def group_name(store_id: int) -> str:
    return f"store.{store_id}"


def user_group_name(user_id: int) -> str:
    """Every dashboard socket of one user, whatever store it watches: where membership and
    session changes are told, so the sockets re-check at once (DashboardConsumer)."""
    return f"user.{user_id}"


class _PushLoop:
    """One event loop per process, on a daemon thread, that every push runs on.

    `async_to_sync` from a plain thread makes a new event loop per call, and channels-redis keeps
    its Redis connections per loop: every push paid for a loop, a thread hop and a fresh Redis
    connection (and a worker's memory grew with them). One long-lived loop keeps one pool.
    Created lazily and per PID, so a prefork worker child gets its own after the fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="dashboard-push", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coro, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop()).result(timeout=timeout)


_push_loop = _PushLoop()


def send(store_id: int, message: dict[str, Any]) -> bool:
    """Push one JSON message to every socket watching the store. False (logged) if it failed."""
    return _group_send(store_id, {"type": "push", "message": message})


def send_many(store_id: int, messages: list[dict[str, Any]]) -> bool:
    """Push several messages with one channel-layer send; each socket receives them one by one, in
    order, exactly as if they had been sent singly (DashboardConsumer.push_batch)."""
    if len(messages) == 1:
        return send(store_id, messages[0])
    return _group_send(store_id, {"type": "push_batch", "messages": messages})


def send_to_user(user_id: int, payload: dict[str, Any]) -> bool:
    """A control message (`{"type": ...}`, a DashboardConsumer handler) to every socket of a user."""
    return _send_to_group(user_group_name(user_id), payload)


def _group_send(store_id: int, payload: dict[str, Any]) -> bool:
    return _send_to_group(group_name(store_id), payload)


def _send_to_group(group: str, payload: dict[str, Any]) -> bool:
    """Publishers are sync code (a view's on_commit, a Celery task, the outbox dispatcher),
    possibly in a thread that runs an event loop of its own; the send always runs on the process's
    push loop."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return False
        _push_loop.run(layer.group_send(group, payload), timeout=5)
        return True
    except Exception:
        log.exception("live push to %s failed", group)
        return False


def alert_message(event: Event) -> dict[str, Any]:
    """`alert.*` events carry the alert (alerts' `Alert.as_event_data()`); add what changed."""
    data = event.data or {}
    alert = {k: data.get(k) for k in ("id", "kind", "severity", "subject", "message", "count", "status")}
    alert["change"] = event.topic.split(".", 1)[1]
    alert["at"] = event.created_at.isoformat()
    alert["order_id"] = str(event.order_id) if event.order_id else None
    return {"type": "alert", "alert": alert}


def stats_message(stats: dict[str, Any]) -> dict[str, Any]:
    return {"type": "stats", "stats": stats}
