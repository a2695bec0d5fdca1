"""The throttled stats push: compute a store's stats and push them to its sockets, at most once per
store every STATS_PUSH_EVERY seconds.

A throttle key (SET NX EX) lets at most one `dashboard.push_stats` task per store through; events
while the key is held only mark the store dirty, and the task runs once more if it was."""

import logging

from celery import shared_task
from django.core.cache import cache

from orderflow.core.tenancy import Store

from . import push, selectors

log = logging.getLogger("orderflow.dashboard.push")

STATS_PUSH_EVERY = 2  # seconds, per store
# The stats task waits this long so that the burst of events that woke it is counted.
STATS_PUSH_DELAY = 1.0
# The throttle key outlives a dead worker's chain by this much at most.
STATS_LOCK_TTL = 15


def lock_key(store_id: int) -> str:
    return f"dashboard:stats-push:{store_id}"


def dirty_key(store_id: int) -> str:
    return f"dashboard:stats-dirty:{store_id}"


def schedule_stats(store_id: int) -> bool:
    """At most one stats push per store every STATS_PUSH_EVERY seconds, without losing the last
    change: the first event takes the key (SET NX EX) and schedules the task; events while the
    key is held only mark the store dirty, and the task re-runs once more if it was. Never raises
    into the publisher (logged)."""
    try:
        if cache.add(lock_key(store_id), 1, timeout=STATS_LOCK_TTL):
            push_stats.apply_async(args=[store_id], countdown=STATS_PUSH_DELAY)
            return True
        cache.set(dirty_key(store_id), 1, timeout=60)
        return False
    except Exception:
        log.exception("stats push for store %s not scheduled", store_id)
        return False


@shared_task(name="dashboard.push_stats", acks_late=True, ignore_result=True)
def push_stats(store_id: int, followup: bool = False) -> bool:
    """Push fresh stats, then look again STATS_PUSH_EVERY seconds later: if events came in the
    meantime (the store is dirty) push once more, else release the throttle key."""
    if followup and not cache.get(dirty_key(store_id)):
        cache.delete(lock_key(store_id))
        return False
    cache.delete(dirty_key(store_id))
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        cache.delete(lock_key(store_id))
        return False
    sent = push.send(store.pk, push.stats_message(selectors.stats(store)))
    cache.set(lock_key(store_id), 1, timeout=STATS_LOCK_TTL)
    push_stats.apply_async(args=[store_id], kwargs={"followup": True}, countdown=STATS_PUSH_EVERY)
    return sent
