"""Celery tasks of the inventory step (thin: call a service)."""

from celery import shared_task

from orderflow.core.tenancy import Store

from . import services


@shared_task(name="inventory.check_inventory", acks_late=True, ignore_result=True)
def check_inventory(store_id: int | None = None) -> dict[str, int]:
    """Beat's low-stock watchdog (every 60 s by default, editable in the admin). Safe to run twice
    or concurrently: each crossing is flipped by a conditional UPDATE and reported once."""
    store = Store.objects.filter(pk=store_id).first() if store_id is not None else None
    if store_id is not None and store is None:
        return {}
    return services.check_inventory(store=store)
