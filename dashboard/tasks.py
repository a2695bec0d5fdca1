"""Dashboard tasks: compute a store's stats and push them to its sockets (throttled by push.py)."""

from celery import shared_task

from orderflow.core.tenancy import Store

from . import push, selectors


@shared_task(name="dashboard.push_stats", acks_late=True, ignore_result=True)
def push_stats(store_id: int) -> bool:
    store = Store.objects.filter(pk=store_id).first()
    if store is None:
        return False
    return push.send(store.pk, push.stats_message(selectors.stats(store)))
