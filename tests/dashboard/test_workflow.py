"""The workflow page: every registered topic has its box from the start, and each box counts the
topics that really land in it (issue #16: "payment succeeded" and "alert open" read 0). The
registry itself is checked against the code in tests/core/test_topics.py."""

from __future__ import annotations

import re

import pytest
from django.db import transaction

from alerts.events import AlertOpened, AlertUpdated
from inventory.events import InventoryUpdated
from orderflow.core.events import emit
from orderflow.core.topics import STEPS, TOPICS
from payments.events import PaymentProcessed
from tests.factories import make_user


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
        emit(PaymentProcessed(), store=store)
        emit(AlertOpened(), store=store)
        emit(AlertUpdated(), store=store)
        emit(InventoryUpdated(), store=store)
    _, boxes, _ = _board(client, store)
    assert boxes["payment.succeeded"] == 1
    assert boxes["alert.open"] == 2
    assert boxes["topic.inventory.updated"] == 1
    assert boxes["order.paid"] == 0
