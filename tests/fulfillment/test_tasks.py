"""The demo drivers, one step at a time, in-process (the real-worker run is in tests/integration)."""

import functools

import pytest

from fulfillment import tasks
from fulfillment.models import Fulfillment, Shipment
from orderflow.core.statemachine import transition
from orders.models import Order
from tests.fulfillment.helpers import shipped, started

pytestmark = pytest.mark.django_db


def _scheduled(callbacks, task):
    """The (args, kwargs, countdown) of each `task.apply_async` queued to run after commit."""
    out = []
    for cb in callbacks:
        owner = getattr(getattr(cb, "func", None), "__self__", None)
        if isinstance(cb, functools.partial) and getattr(owner, "name", None) == task.name:
            args = list(cb.args) + [None] * 2
            out.append((tuple(args[0]), args[1] or {}, cb.keywords.get("countdown")))
    return out


def test_autopilot_walks_one_step_per_run_and_chains_itself(
    store, settings, django_capture_on_commit_callbacks
):
    settings.FULFILLMENT_AUTOPILOT = True
    settings.FULFILLMENT_AUTOPILOT_STEP_SECONDS = 0.1
    f = started(store)
    steps = []
    for _ in range(6):
        with django_capture_on_commit_callbacks() as callbacks:
            steps.append(tasks.autopilot_step(f.pk, store.pk))
        expected = [((f.pk, store.pk), {}, 0.1)] if steps[-1] not in (None, "ship") else []
        assert _scheduled(callbacks, tasks.autopilot_step) == expected
    assert steps == ["pick", "pack", "ready", "ship", None, None]
    f.refresh_from_db()
    assert f.status == "shipped" and f.shipped_by == "autopilot"
    assert Order.all_stores.get(pk=f.order_id).status == "shipped"


def test_autopilot_off_does_nothing(store, settings):
    settings.FULFILLMENT_AUTOPILOT = False
    f = started(store)
    assert tasks.autopilot_step(f.pk, store.pk) is None
    f.refresh_from_db()
    assert f.status == "pending"


@pytest.mark.parametrize(
    "store_value, global_value, runs", [(True, False, True), (False, True, False), (None, True, True)]
)
def test_store_switch_overrides_the_global_autopilot(store, settings, store_value, global_value, runs):
    settings.FULFILLMENT_AUTOPILOT = global_value
    store.settings = {"fulfillment_autopilot": store_value}
    store.save()
    f = started(store)
    assert (tasks.autopilot_step(f.pk, store.pk) == "pick") is runs


def test_autopilot_stops_quietly_on_a_cancelled_order(store, settings):
    settings.FULFILLMENT_AUTOPILOT = True
    f = started(store)
    transition(Order.all_stores.get(pk=f.order_id), "cancelled")
    assert tasks.autopilot_step(f.pk, store.pk) is None
    assert Fulfillment.all_stores.get(pk=f.pk).status == "pending"


def test_simulator_task_chains_until_delivered(store, settings, django_capture_on_commit_callbacks):
    settings.CARRIER_SIMULATOR = True
    settings.CARRIER_EXCEPTION_RATE = 0
    settings.CARRIER_STEP_SECONDS = 0.1
    s = shipped(store)
    statuses = []
    for step in range(3):
        with django_capture_on_commit_callbacks() as callbacks:
            statuses.append(tasks.simulate_carrier(s.pk, store.pk, step=step))
        expected = [] if statuses[-1] == "delivered" else [((s.pk, store.pk), {"step": step + 1}, 0.1)]
        assert _scheduled(callbacks, tasks.simulate_carrier) == expected
    assert statuses == ["in_transit", "out_for_delivery", "delivered"]
    assert Shipment.all_stores.get(pk=s.pk).status == "delivered"


def test_simulator_off_does_nothing(store, settings):
    settings.CARRIER_SIMULATOR = False
    s = shipped(store)
    assert tasks.simulate_carrier(s.pk, store.pk) is None
    assert Shipment.all_stores.get(pk=s.pk).status == "label_created"
