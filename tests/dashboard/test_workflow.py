"""The workflow page: every registered topic has its box from the start, and each box counts the
topics that really land in it (issue #16: "payment succeeded" and "alert open" read 0)."""

from __future__ import annotations

import ast
import re

import pytest
from django.db import transaction

from alerts.models import Alert
from dashboard.selectors import MACHINES
from fulfillment.models import Fulfillment, Shipment
from orderflow.core.events import emit
from orderflow.core.statemachine import graph
from orderflow.core.topics import STEPS, TOPICS
from orders.models import Order
from payments.models import Payment
from tests.conftest import ROOT
from tests.factories import make_user

APPS = ["orders", "fraud", "payments", "fulfillment", "inventory", "alerts", "orderflow/core"]


def _emitted_literals() -> set[str]:
    """Every topic the code names: `emit("x", ...)` and `transition(..., topic="x")`."""
    found = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name == "emit" and node.args and isinstance(node.args[0], ast.Constant):
                    found.add(node.args[0].value)
                if name == "transition":
                    found |= {
                        k.value.value
                        for k in node.keywords
                        if k.arg == "topic" and isinstance(k.value, ast.Constant)
                    }
    return found


def _default_state_topics() -> set[str]:
    """`<prefix>.<state>` for every state a move can enter (what transition() emits by default)."""
    machines = (Order, Payment, Fulfillment, Shipment, Alert)
    return {f"{m.EVENT_PREFIX}.{dst}" for m in machines for dsts in graph(m).values() for dst in dsts}


def test_the_registry_holds_every_topic_the_code_emits_and_nothing_else():
    literals, defaults = _emitted_literals(), _default_state_topics()
    overridden = {t.box for t in TOPICS.values() if t.box and t.box != t.name}
    assert literals - set(TOPICS) == set()
    assert {t for t in defaults if t not in overridden} - set(TOPICS) == set()
    assert set(TOPICS) - literals - defaults == set()
    assert {t.step for t in TOPICS.values()} <= set(STEPS)
    states = {f"{m.EVENT_PREFIX}.{s}" for m in MACHINES.values() for s in graph(m)}
    assert {t.box for t in TOPICS.values() if t.box} <= states


def _board(client, store, user=None):
    client.force_login(user or make_user(store=store))
    r = client.get(f"/dashboard/workflow/?store={store.slug}")
    assert r.status_code == 200
    html = r.content.decode()
    boxes = dict(re.findall(r'data-box="([^"]+)"[^>]*data-count="(\d+)"', html))
    topics = set(" ".join(re.findall(r'data-topics="([^"]*)"', html)).split())
    return html, {k: int(v) for k, v in boxes.items()}, topics


@pytest.mark.django_db
def test_a_fresh_store_shows_every_registered_topic_in_steps_left_to_right(client, store):
    html, boxes, topics = _board(client, store)
    assert topics == set(TOPICS)
    assert "inventory.updated" in topics
    assert set(boxes.values()) == {0}
    positions = [html.index(f'data-step="{s}"') for s in STEPS]
    assert positions == sorted(positions)
    assert 'id="show-wiring"' in html  # the wiring is on demand


@pytest.mark.django_db
def test_payment_succeeded_and_alert_open_count_the_events_that_land_there(client, store):
    with transaction.atomic():
        emit("payment.processed", store=store, data={})
        emit("alert.opened", store=store, data={})
        emit("alert.updated", store=store, data={})
        emit("inventory.updated", store=store, data={})
    _, boxes, _ = _board(client, store)
    assert boxes["payment.succeeded"] == 1
    assert boxes["alert.open"] == 2
    assert boxes["topic.inventory.updated"] == 1
    assert boxes["order.paid"] == 0
