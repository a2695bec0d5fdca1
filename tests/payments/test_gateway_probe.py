"""Beat's probe closes an open breaker once the (real, mock) gateway answers again, with no
payment waiting to try — so `gateway.up` is emitted and the `gateway_down` alert can resolve."""

import time

import pytest

from orderflow.core.events import Event
from payments import breaker, services

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_breaker(settings, store, gateway):
    settings.GATEWAY_URL = gateway.url
    settings.BREAKER_FAILURE_THRESHOLD = 1
    settings.BREAKER_COOLDOWN_SECONDS = 30
    breaker.reset()
    breaker.record_failure(store.pk)
    assert breaker.state()["state"] == "open"
    yield
    breaker.reset()


def _end_cooldown():
    breaker.client().set(breaker.K_OPEN_UNTIL, time.time() - 0.01)


def test_probe_waits_for_the_cooldown(open_breaker):
    assert services.probe_gateway() == "open"
    assert breaker.state()["state"] == "open"


def test_probe_closes_the_breaker_when_the_gateway_answers_and_tells_the_store(open_breaker, store):
    _end_cooldown()
    assert services.probe_gateway() == "closed"
    assert breaker.state()["state"] == "closed"
    assert Event.all_stores.filter(store=store, topic="gateway.up").count() == 1


def test_probe_during_an_outage_opens_another_cooldown(open_breaker, gateway, store):
    gateway.control(outage=True)
    _end_cooldown()
    assert services.probe_gateway() == "open"
    assert breaker.state()["state"] == "open"
    assert breaker.state()["open_until"] > time.time()
    assert not Event.all_stores.filter(topic="gateway.up").exists()


def test_probe_of_a_closed_breaker_calls_nothing(settings, gateway):
    settings.GATEWAY_URL = "http://127.0.0.1:1"  # would fail if it were called
    breaker.reset()
    assert services.probe_gateway() == "closed"


def test_probe_of_a_closed_breaker_still_tells_stores_left_waiting_for_up(settings, gateway, store):
    settings.GATEWAY_URL = gateway.url
    breaker.reset()
    breaker.note_store(store.pk)  # told "down" by a failure that raced the closing success
    assert breaker.state()["state"] == "closed"
    assert services.probe_gateway() == "closed"
    assert Event.all_stores.filter(store=store, topic="gateway.up").count() == 1
    assert breaker.state()["stores"] == 0
    assert services.probe_gateway() == "closed"
    assert Event.all_stores.filter(store=store, topic="gateway.up").count() == 1
    breaker.reset()
