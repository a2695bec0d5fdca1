"""The circuit breaker against the real Redis: closed → open → half-open (one probe) → closed."""

import time

import pytest

from payments import breaker


@pytest.fixture(autouse=True)
def _short_breaker(settings):
    settings.BREAKER_FAILURE_THRESHOLD = 3
    settings.BREAKER_COOLDOWN_SECONDS = 30


def _expire_cooldown():
    breaker.client().set(breaker.K_OPEN_UNTIL, time.time() - 0.01)


def test_closed_breaker_lets_calls_through():
    assert breaker.before_call() == breaker.Permit(True)
    assert breaker.state()["state"] == "closed"


def test_opens_after_the_threshold_of_consecutive_failures():
    assert not breaker.record_failure(1).opened
    assert not breaker.record_failure(1).opened
    assert breaker.before_call().allowed
    third = breaker.record_failure(1)
    assert third.opened and third.store_is_new and third.failures == 3
    permit = breaker.before_call()
    assert not permit.allowed and 29 < permit.wait_seconds <= 30
    assert breaker.state()["state"] == "open"


def test_a_success_resets_the_consecutive_count():
    breaker.record_failure(1)
    breaker.record_failure(1)
    assert breaker.record_success() == []
    assert not breaker.record_failure(1).opened
    assert breaker.before_call().allowed


def test_half_open_lets_exactly_one_probe_through():
    for _ in range(3):
        breaker.record_failure(1)
    _expire_cooldown()
    first = breaker.before_call()
    second = breaker.before_call()
    assert first.allowed and first.probe
    assert not second.allowed and second.wait_seconds > 0
    assert breaker.state()["state"] == "half_open"


def test_a_failed_probe_opens_it_for_another_cooldown_without_a_second_open_signal():
    for _ in range(3):
        breaker.record_failure(1)
    _expire_cooldown()
    assert breaker.before_call().probe
    again = breaker.record_failure(1)
    assert not again.opened and not again.store_is_new
    assert not breaker.before_call().allowed


def test_the_first_success_closes_it_and_names_every_store_that_saw_it_down():
    for _ in range(3):
        breaker.record_failure(1)
    assert breaker.note_store(2) is True
    assert breaker.note_store(2) is False
    _expire_cooldown()
    assert breaker.before_call().probe
    assert breaker.record_success() == [1, 2]
    assert breaker.record_success() == []  # told once: the set is emptied with the close
    assert breaker.before_call() == breaker.Permit(True)
    assert breaker.state() | {"open_until": None} == {
        "state": "closed",
        "failures": 0,
        "open_until": None,
        "opened_at": None,
        "stores": 0,
    }


def test_only_one_concurrent_opener_reports_the_opening():
    for _ in range(2):
        breaker.record_failure(1)
    results = [breaker.record_failure(1), breaker.record_failure(2)]
    assert [r.opened for r in results] == [True, False]
    assert [r.store_is_new for r in results] == [True, True]


def test_a_store_added_by_a_failure_racing_the_closing_success_is_told_by_the_next_success():
    """The failure opened the breaker, the success closed it and read the (still empty) set, then
    the failure added its store and sent `gateway.down`: the store must still hear `gateway.up`."""
    for _ in range(2):
        breaker.record_failure(1)
    r = breaker.client()
    r.set(breaker.K_OPEN_UNTIL, time.time() + 30)  # the racing failure opened it...
    assert breaker.record_success() == []  # ...the success closed it before the store was added
    assert breaker.note_store(1) is True  # the failure adds its store (and says "down")
    assert breaker.state()["state"] == "closed" and breaker.state()["stores"] == 1
    assert breaker.record_success() == [1]
    assert breaker.state()["stores"] == 0
