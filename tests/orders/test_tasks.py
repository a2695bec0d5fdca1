"""The hourly idempotency purge and its beat schedule."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from orders.models import IdempotencyRecord
from orders.services import purge_idempotency_records
from orders.tasks import purge_idempotency_keys

pytestmark = pytest.mark.django_db


def _record(store, key: str, age_hours: float) -> IdempotencyRecord:
    record = IdempotencyRecord.all_stores.create(store=store, key=key, fingerprint="f" * 64, state="done")
    IdempotencyRecord.all_stores.filter(pk=record.pk).update(
        created_at=timezone.now() - timedelta(hours=age_hours)
    )
    return record


def test_purge_removes_only_records_older_than_the_ttl(store, other_store, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 48
    _record(store, "old-a", 49)
    _record(other_store, "old-b", 100)
    _record(store, "young", 47)
    _record(store, "fresh", 0)
    assert purge_idempotency_keys() == 2
    assert set(IdempotencyRecord.all_stores.values_list("key", flat=True)) == {"young", "fresh"}


def test_keys_are_kept_at_least_24_hours_whatever_the_setting(store, settings):
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 1
    _record(store, "twenty-three", 23)
    _record(store, "twenty-five", 25)
    assert purge_idempotency_records() == 1
    assert list(IdempotencyRecord.all_stores.values_list("key", flat=True)) == ["twenty-three"]


def test_purge_works_in_batches(store):
    for i in range(7):
        _record(store, f"k{i}", 72)
    assert purge_idempotency_records(batch=3) == 7
    assert IdempotencyRecord.all_stores.count() == 0


def test_purge_is_scheduled_hourly_on_beat():
    task = PeriodicTask.objects.get(task="orders.purge_idempotency_keys")
    assert task.enabled and task.interval.every == 3600 and task.interval.period == "seconds"
