"""The reconciler's registry and its one beat task: every app's sweep runs from `core.reconcile`,
in flow order, each isolated (one app's failure is logged and counted, the others still run), the
backlog rule holds back only re-drives, and beat has one entry for it instead of one per app."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings as conf
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from fulfillment.models import Fulfillment
from orderflow.core import reconcile
from orderflow.core.tasks import reconcile_all
from tests.factories import make_product
from tests.fulfillment.helpers import started
from tests.payments.helpers import create_order, stock
from tests.reconciling import empty_queues, frozen, queued, reconciled, sweep

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_queues():
    empty_queues()
    yield
    empty_queues()


@pytest.fixture
def stuck_everywhere(store, settings):
    """One stuck state per app: a cancelled order still holding stock (orders), a pending order
    whose fraud check was lost (payments), an autopilot chain that broke (fulfillment)."""
    settings.FULFILLMENT_AUTOPILOT = True
    settings.FULFILLMENT_AUTOPILOT_STEP_SECONDS = 1
    product = make_product(store, "TEE", price="20.00", stock=10)
    leaked = frozen(create_order(store, (product, 3)), status="cancelled", seconds=600)
    lost = frozen(create_order(store, (product, 1)), seconds=600)
    chain = started(store)
    Fulfillment.all_stores.filter(pk=chain.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    empty_queues()  # only what the sweep sends
    return product, leaked, lost, chain


@pytest.fixture
def failing_sweep():
    """An app whose sweep raises, registered between orders' and payments' sweeps."""

    @reconcile.reconciler("broken", order=20)
    def broken(sweep):
        raise RuntimeError("this app's sweep is broken")

    yield
    reconcile.unregister("broken")


def test_every_app_registers_its_sweep_and_they_run_in_flow_order():
    assert [(r.app, r.order) for r in reconcile.registered()] == [
        ("orders", 10),
        ("payments", 30),
        ("fulfillment", 40),
    ]


def test_the_one_task_drives_every_apps_sweep(store, stuck_everywhere, django_capture_on_commit_callbacks):
    product, leaked, lost, chain = stuck_everywhere
    with django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_all.apply().get()  # what beat sends every minute

    assert counts == {"reservation_released": 1, "fraud_check_requeued": 1, "autopilot_resumed": 1}
    assert reconciled(store, leaked)[0]["problem"] == "reservation_leaked"  # orders
    assert stock(product)[1] == 1  # only the live order's unit is still reserved
    assert queued("payments.screen_and_charge") == [[str(lost.pk), store.pk]]  # payments
    assert queued("fulfillment.autopilot_step") == [[chain.pk, store.pk]]  # fulfillment


def test_one_apps_failing_sweep_is_counted_and_does_not_stop_the_others(
    store, stuck_everywhere, failing_sweep, django_capture_on_commit_callbacks, caplog
):
    product, leaked, lost, chain = stuck_everywhere

    counts = sweep(django_capture_on_commit_callbacks)

    assert counts == {
        "reservation_released": 1,
        "errors": 1,
        "failed_broken": 1,
        "fraud_check_requeued": 1,
        "autopilot_resumed": 1,
    }
    assert "the broken sweep failed" in caplog.text
    assert queued("payments.screen_and_charge") == [[str(lost.pk), store.pk]]  # ran after the failure
    assert queued("fulfillment.autopilot_step") == [[chain.pk, store.pk]]


def test_deep_queues_hold_back_the_redrives_not_the_repairs(
    store, stuck_everywhere, settings, django_capture_on_commit_callbacks
):
    product, leaked, lost, chain = stuck_everywhere
    settings.RECONCILE_BACKLOG_LIMIT = 2
    r = redis.Redis.from_url(conf.CELERY_BROKER_URL)
    r.lpush("orders", *[json.dumps({"headers": {"task": "waiting"}, "body": ""})] * 3)

    counts = sweep(django_capture_on_commit_callbacks)

    assert counts == {"skipped_backlog": 3, "reservation_released": 1, "autopilot_resumed": 1}
    assert reconciled(store, lost) == [] and queued("payments.screen_and_charge") == []
    r.delete("orders")
    assert sweep(django_capture_on_commit_callbacks)["fraud_check_requeued"] == 1


def test_beat_runs_the_one_reconcile_task_every_minute_and_the_per_app_entries_are_retired():
    task = PeriodicTask.objects.get(task="core.reconcile")
    assert task.enabled and (task.interval.every, task.interval.period) == (60, "seconds")
    retired = ["payments.reconcile_stuck_orders", "payments.reconcile_payments", "fulfillment.resume_stalled"]
    assert not PeriodicTask.objects.filter(task__in=retired).exists()
