"""Dashboard tasks: compute a store's stats and push them to its sockets (throttled by push.py)."""

from celery import shared_task

from orderflow.core.tenancy import Store

from . import push, selectors


@shared_task(name="dashboard.push_stats", acks_late=True, ignore_result=True)
def push_stats(store_id: int, followup: bool = False) -> bool:
    """Push fresh stats, then look again STATS_PUSH_EVERY seconds later: if events came in the
    meantime (the store is dirty) push once more, else release the throttle key."""
    cache = push.cache
    if followup and not cache.get(push.dirty_key(store_id)):
        cache.delete(push.lock_key(store_id))
        return False
    cache.delete(push.dirty_key(store_id))
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        cache.delete(push.lock_key(store_id))
        return False
    sent = push.send(store.pk, push.stats_message(selectors.stats(store)))
    cache.set(push.lock_key(store_id), 1, timeout=push.STATS_LOCK_TTL)
    push_stats.apply_async(args=[store_id], kwargs={"followup": True}, countdown=push.STATS_PUSH_EVERY)
    return sent
