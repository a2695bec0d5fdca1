"""Live push to browsers: committed events, alerts and (throttled) fresh stats, one Channels group
per store on the Redis channel layer.

Runs in whatever process published the event (the web process after a request commits, or a
worker), so it must be cheap and must never raise into the publisher: every failure is logged
and swallowed. Stats are not computed here: a throttle key (SET NX EX) lets at most one
`dashboard.push_stats` task per store through every STATS_PUSH_EVERY seconds.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache

from orderflow.core.events import Event

log = logging.getLogger("orderflow.dashboard.push")

STATS_PUSH_EVERY = 2  # seconds, per store
# The stats task waits this long so that the burst of events that woke it is counted.
STATS_PUSH_DELAY = 1.0
# The throttle key outlives a dead worker's chain by this much at most.
STATS_LOCK_TTL = 15


def group_name(store_id: int) -> str:
    return f"store.{store_id}"


_loop_thread: ThreadPoolExecutor | None = None


def _group_send(layer, group: str, payload: dict[str, Any]) -> None:
    async_to_sync(layer.group_send)(group, payload)


def send(store_id: int, message: dict[str, Any]) -> bool:
    """Push one JSON message to every socket watching the store. False (logged) if it failed.

    Publishers are sync code (a view's on_commit, a Celery task). Should one ever run in a thread
    that also runs an event loop (async_to_sync refuses that), the send hops to a helper thread."""
    global _loop_thread
    try:
        layer = get_channel_layer()
        if layer is None:
            return False
        payload = {"type": "push", "message": message}
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _group_send(layer, group_name(store_id), payload)
        else:
            if _loop_thread is None:
                _loop_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-push")
            _loop_thread.submit(_group_send, layer, group_name(store_id), payload).result(timeout=5)
        return True
    except Exception:
        log.exception("live push to store %s failed", store_id)
        return False


def alert_message(event: Event) -> dict[str, Any]:
    """`alert.*` events carry the alert (alerts' `Alert.as_event_data()`); add what changed."""
    data = event.data or {}
    alert = {k: data.get(k) for k in ("id", "kind", "severity", "subject", "message", "count", "status")}
    alert["change"] = event.topic.split(".", 1)[1]
    alert["at"] = event.created_at.isoformat()
    alert["order_id"] = str(event.order_id) if event.order_id else None
    return {"type": "alert", "alert": alert}


def push_event(event: Event) -> None:
    """The event_published receiver's body: event, alert if it is one, then maybe stats."""
    try:
        store_id = event.store_id
        send(store_id, {"type": "event", "event": event.as_message()})
        if event.topic.startswith("alert."):
            send(store_id, alert_message(event))
        schedule_stats(store_id)
    except Exception:
        log.exception("live push of event %s failed", getattr(event, "pk", None))


def lock_key(store_id: int) -> str:
    return f"dashboard:stats-push:{store_id}"


def dirty_key(store_id: int) -> str:
    return f"dashboard:stats-dirty:{store_id}"


def schedule_stats(store_id: int) -> bool:
    """At most one stats push per store every STATS_PUSH_EVERY seconds, without losing the last
    change: the first event takes the key (SET NX EX) and schedules the task; events while the
    key is held only mark the store dirty, and the task re-runs once more if it was."""
    try:
        if cache.add(lock_key(store_id), 1, timeout=STATS_LOCK_TTL):
            from .tasks import push_stats

            push_stats.apply_async(args=[store_id], countdown=STATS_PUSH_DELAY)
            return True
        cache.set(dirty_key(store_id), 1, timeout=60)
        return False
    except Exception:
        log.exception("stats push for store %s not scheduled", store_id)
        return False


def stats_message(stats: dict[str, Any]) -> dict[str, Any]:
    return {"type": "stats", "stats": stats}
