"""Fulfillment's reconciler sweep restarts autopilot and carrier chains that a lost message broke;
fresh ones are left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fulfillment import watchdog
from fulfillment.models import Fulfillment, Shipment
from fulfillment.tasks import autopilot_step
from orderflow.core.reconcile import registered, run_all
from orderflow.core.tasks import reconcile_all
from tests.fulfillment.helpers import shipped, started
from tests.reconciling import empty_queues, queued

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings):
    settings.FULFILLMENT_AUTOPILOT = True
    settings.CARRIER_SIMULATOR = True
    settings.RECONCILE_STUCK_AFTER_SECONDS = 60
    settings.FULFILLMENT_AUTOPILOT_STEP_SECONDS = 1
    settings.CARRIER_STEP_SECONDS = 1


def _age(model, pk, seconds):
    model.all_stores.filter(pk=pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


def test_a_stalled_autopilot_fulfillment_is_found_a_fresh_one_is_not(store, demo):
    stalled, fresh = started(store), started(store)
    _age(Fulfillment, stalled.pk, 120)
    assert watchdog.stalled_fulfillments() == [(stalled.pk, store.pk)]
    assert fresh.pk not in [pk for pk, _ in watchdog.stalled_fulfillments()]


def test_shipped_and_cancelled_fulfillments_are_never_resumed(store, demo):
    f = started(store)
    Fulfillment.all_stores.filter(pk=f.pk).update(status="cancelled")
    _age(Fulfillment, f.pk, 120)
    assert watchdog.stalled_fulfillments() == []


def test_autopilot_off_means_nothing_to_resume(store, demo, settings):
    settings.FULFILLMENT_AUTOPILOT = False
    f = started(store)
    _age(Fulfillment, f.pk, 120)
    assert watchdog.stalled_fulfillments() == []


def test_a_stalled_simulated_shipment_resumes_at_its_next_step(store, demo):
    shipment = shipped(store)
    _age(Shipment, shipment.pk, 120)
    assert watchdog.stalled_shipments() == [(shipment.pk, store.pk, 0)]
    Shipment.all_stores.filter(pk=shipment.pk).update(status="delivered")
    assert watchdog.stalled_shipments() == []


def test_the_sweep_reenqueues_the_next_step(store, demo):
    f = started(store)
    _age(Fulfillment, f.pk, 120)
    shipment = shipped(store)
    _age(Shipment, shipment.pk, 120)
    empty_queues()
    assert run_all(apps=["fulfillment"]) == {"autopilot_resumed": 1, "carrier_resumed": 1}
    assert queued("fulfillment.autopilot_step") == [[f.pk, store.pk]]
    assert queued("fulfillment.simulate_carrier") == [[shipment.pk, store.pk]]
    assert autopilot_step(f.pk, store.pk) == "pick"


def test_the_sweep_is_registered_and_runs_from_the_one_reconcile_task(store, demo):
    f = started(store)
    _age(Fulfillment, f.pk, 120)
    empty_queues()
    assert "fulfillment" in [r.app for r in registered()]
    assert reconcile_all.apply().get()["autopilot_resumed"] == 1
    assert queued("fulfillment.autopilot_step") == [[f.pk, store.pk]]
