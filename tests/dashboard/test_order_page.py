"""The order page reads as a story: a status stepper from the transition table, one sentence per
event with its JSON folded away, and every time in 24 h in the store's time zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import transaction

from dashboard.timeline import happy_path, sentence
from orderflow.core.errors import ValidationFailed
from orderflow.core.events import Event, write_event
from orderflow.core.store_settings import update_store_settings, validate_store_settings
from orderflow.core.topics import TOPICS
from orders.models import Order
from tests.dashboard.helpers import make_order
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _page(client, store, order) -> str:
    client.force_login(make_user(store=store))
    r = client.get(f"/dashboard/orders/{order.pk}/?store={store.slug}")
    assert r.status_code == 200
    return r.content.decode()


def _emit(store, order, topic, data, at=None):
    with transaction.atomic():
        write_event(topic, store=store, order_id=order.pk, subject=order, data=data)
    if at is not None:
        Event.all_stores.filter(store=store, topic=topic, order_id=order.pk).update(created_at=at)


def test_the_stepper_is_the_states_every_delivered_order_passes_through():
    steps = ["pending", "payment_processing", "paid", "fulfilling", "ready_to_ship", "shipped", "delivered"]
    assert happy_path() == steps
    # a state no order can skip on its way to delivered joins the stepper by itself
    table = {**Order.TRANSITIONS, "paid": {"packing"}, "packing": {"fulfilling"}}
    assert "packing" in happy_path(table)


def test_the_order_page_highlights_the_current_step(client, store):
    order = make_order(store, status="fulfilling", payment_status="succeeded")
    html = _page(client, store, order)
    steps = re.findall(r'<li class="step (\w+)" data-state="(\w+)"', html)
    assert [s for _, s in steps] == happy_path()
    assert dict((s, at) for at, s in steps) == {
        "pending": "done",
        "payment_processing": "done",
        "paid": "done",
        "fulfilling": "current",
        "ready_to_ship": "todo",
        "shipped": "todo",
        "delivered": "todo",
    }
    assert 'aria-current="step"' in html


def test_a_cancelled_order_shows_where_it_stopped(client, store):
    order = make_order(store, status="cancelled")
    _emit(store, order, "order.created", {"number": order.number})
    _emit(store, order, "order.payment_processing", {"to": "payment_processing"})
    html = _page(client, store, order)
    assert '<li class="step stopped" data-state="payment_processing"' in html
    assert 'class="off-path"' in html


def test_the_timeline_speaks_in_sentences_with_the_json_folded_away(client, store):
    order = make_order(store, status="paid", payment_status="succeeded", total="42.00")
    Order.all_stores.filter(pk=order.pk).update(card_brand="visa", card_last4="4242")
    _emit(
        store,
        order,
        "order.created",
        {"number": order.number, "total": "42.00", "currency": "EUR", "units": 2},
    )
    _emit(store, order, "payment.processed", {"amount": "42.00", "currency": "EUR", "charge_id": "ch_1"})
    html = _page(client, store, order)
    assert "Payment of €42.00 succeeded (visa •••• 4242)" in html
    assert f"Order #{order.number} placed: 2 item(s) for €42.00" in html
    # the raw event is one click away, not on the page by default
    assert re.search(r"<details><summary><code>payment.processed</code></summary><pre>[^<]*ch_1", html)


def test_every_registered_topic_reads_as_a_sentence(store):
    order = make_order(store)
    for topic in TOPICS:
        said = sentence(topic, {}, order)
        assert said and not said.startswith("{"), topic


def test_times_are_24h_in_the_stores_time_zone(client, store):
    update_store_settings(
        store=store, actor="t", changes=validate_store_settings(store, {"timezone": "Asia/Tokyo"})
    )
    order = make_order(store)
    _emit(
        store, order, "order.created", {"number": order.number}, at=datetime(2026, 3, 1, 13, 5, 9, tzinfo=UTC)
    )
    html = _page(client, store, order)
    assert ">22:05:09</time>" in html  # 13:05 UTC is 22:05 in Tokyo, never "10:05 p.m."
    assert "24 h, Asia/Tokyo" in html
    assert '"tz": "Asia/Tokyo"' in html  # the page's scripts format live times the same way


def test_the_time_zone_setting_is_validated_and_defaults_to_utc(client, store):
    with pytest.raises(ValidationFailed) as exc:
        validate_store_settings(store, {"timezone": "Mars/Olympus"})
    assert "timezone" in exc.value.fields
    order = make_order(store)
    assert "24 h, UTC" in _page(client, store, order)


def test_the_payment_recovery_topics_read_as_sentences():
    from types import SimpleNamespace

    from dashboard.timeline import sentence

    order = SimpleNamespace(total="42.00", currency="EUR", card_brand="visa", card_last4="4242", number=7)
    assert sentence("payment.retry_requested", {"requested_by": "shopper", "new_card": True}, order) == (
        "Payment tried again (asked by shopper, with a new card)"
    )
    assert sentence("payment.waiting", {}, order).startswith("The gateway is down")
    for topic in ("payment.resumed", "payment.refund_requested", "payment.partially_refunded"):
        said = sentence(topic, {"amount": "5.00", "currency": "EUR"}, order)
        assert said != topic and "payment" not in said.split(":")[0].lower(), said
