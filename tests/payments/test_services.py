"""The payments services in-process against the real mock gateway: fraud decisions, one charge
turn at a time (what the Celery task runs), the breaker's effect, refunds."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from fraud import rules as fraud
from fraud import services as fraud_services
from orderflow.core import vault
from orderflow.core.errors import InvalidTransition
from orderflow.core.events import Event
from orderflow.core.statemachine import transition
from orders.models import Order
from payments import breaker, refunds, services
from payments.models import Payment, PaymentAttempt
from tests.factories import make_product
from tests.payments.helpers import (
    CARD_DECLINED,
    CARD_INSUFFICIENT,
    CARD_OK,
    CARD_PROCESSING_ERROR,
    create_order,
    event,
    stock,
    topics,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def product(store):
    return make_product(store, "TEE", price="20.00", stock=10)


def approved(store, product, **kw):
    order = create_order(store, (product, 2), **kw)
    services.screen_order(store=store, order_id=order.pk)
    order.refresh_from_db()
    assert order.status == "payment_processing"
    return order, Payment.all_stores.get(order=order)


def run_to_end(store, payment, limit=20):
    steps = []
    for _ in range(limit):
        step = services.attempt_charge(store=store, payment_id=payment.pk)
        steps.append(step)
        if step.kind == "done":
            break
    payment.refresh_from_db()
    return steps


# -------------------------------------------------------------------------------- fraud


def test_fraud_approve_moves_the_order_to_payment_and_opens_its_payment(store, product):
    order, payment = approved(store, product)
    assert (order.risk_score, order.risk_decision, order.risk_rules) == (0, "approve", [])
    assert payment.status == "pending" and payment.amount == Decimal("40.00") and payment.currency == "EUR"
    assert payment.idempotency_key == f"charge-{payment.pk}"
    checked = event(store, "fraud.checked", order)
    assert checked.data == {"score": 0, "decision": "approve", "rules": []}
    assert topics(store, order)[-2:] == ["fraud.checked", "order.payment_processing"]


def test_fraud_review_holds_the_order_with_its_rule_hits(store, product):
    order = create_order(store, (product, 1), country="IR")
    services.screen_order(store=store, order_id=order.pk)
    order.refresh_from_db()
    assert (order.status, order.risk_score, order.risk_decision) == ("fraud_review", 50, "review")
    assert [r["rule"] for r in order.risk_rules] == ["high_risk_country"]
    assert event(store, "fraud.checked", order).data["rules"][0]["points"] == 50
    assert event(store, "order.fraud_review", order) is not None
    assert not Payment.all_stores.filter(order=order).exists()


def test_fraud_reject_rejects_the_order_and_releases_its_stock(store, product):
    order = create_order(store, (product, 3), country="IR", email="x@mailinator.com")
    assert stock(product) == (10, 3)
    services.screen_order(store=store, order_id=order.pk)
    order.refresh_from_db()
    assert (order.status, order.risk_decision, order.risk_score) == ("rejected", "reject", 80)
    assert stock(product) == (10, 0)


def test_fraud_check_disabled_approves_with_score_zero(store, product):
    store.settings = {"fraud_check_enabled": False}
    store.save()
    order = create_order(store, (product, 1), country="IR", email="x@mailinator.com")
    services.screen_order(store=store, order_id=order.pk)
    order.refresh_from_db()
    assert (order.status, order.risk_score, order.risk_decision) == ("payment_processing", 0, "approve")


def test_store_thresholds_and_limits_come_from_store_settings(store, product):
    store.settings = {"fraud_amount_limit": "30.00", "fraud_review_threshold": 40}
    store.save()
    order = create_order(store, (product, 2))
    services.screen_order(store=store, order_id=order.pk)
    order.refresh_from_db()
    assert order.status == "fraud_review"
    assert order.risk_rules[0]["rule"] == "amount_over_limit"


def test_fraud_check_runs_once_per_order(store, product):
    order = create_order(store, (product, 1))
    services.screen_order(store=store, order_id=order.pk)
    services.screen_order(store=store, order_id=order.pk)
    assert topics(store, order).count("fraud.checked") == 1


def test_velocity_per_email_is_counted_in_the_database(store, product):
    for _ in range(3):
        create_order(store, (product, 1), email="fast@example.com")
    fourth = create_order(store, (product, 1), email="FAST@example.com")
    facts = fraud.gather_facts(fourth)
    assert facts.email_orders_in_window == 4
    assert [h.rule for h in fraud.assess(fourth).hits] == ["velocity_email"]


def test_velocity_per_card_and_per_ip_are_counted_in_the_database(store, product):
    for _ in range(5):
        create_order(store, (product, 1), client_ip="203.0.113.9")
    sixth = create_order(store, (product, 1), client_ip="203.0.113.9")
    facts = fraud.gather_facts(sixth)
    assert (facts.card_orders_in_window, facts.ip_orders_in_window) == (6, 6)
    assert [h.rule for h in fraud.assess(sixth).hits] == ["velocity_card"]


def test_many_distinct_cards_for_one_email(store, product):
    create_order(store, (product, 1), email="cards@example.com", card=CARD_DECLINED)
    create_order(store, (product, 1), email="cards@example.com", card=CARD_INSUFFICIENT)
    third = create_order(store, (product, 1), email="cards@example.com")
    assert fraud.gather_facts(third).distinct_cards_for_email == 3
    assert "many_cards_for_email" in [h.rule for h in fraud.assess(third).hits]


def test_distinct_cards_are_counted_up_to_the_limit_in_the_velocity_statement(
    store, product, django_assert_num_queries, settings
):
    """Like the velocity counts, the different cards stop at limit + 1 ("more than the limit?")
    and come in the same statement; the same card twice counts once."""
    store.settings = {"fraud_cards_per_email_limit": 1}
    store.save()
    for card in (CARD_DECLINED, CARD_INSUFFICIENT, CARD_PROCESSING_ERROR, CARD_OK):
        create_order(store, (product, 1), email="many@example.com", card=card)
    again = create_order(store, (product, 1), email="many@example.com", card=CARD_OK)
    settings.FRAUD_HISTORY_CACHE_SECONDS = 60
    facts = fraud.gather_facts(again)
    with django_assert_num_queries(1):  # the store's history comes from the cache after the first read
        fraud.gather_facts(again)
    assert (facts.distinct_cards_for_email, facts.cards_limit) == (2, 1)
    assert facts.prior_orders_for_email == 1
    two = create_order(store, (product, 1), email="two@example.com", card=CARD_OK)
    store.settings = {"fraud_cards_per_email_limit": 5}
    store.save()
    create_order(store, (product, 1), email="two@example.com", card=CARD_OK)
    assert fraud.gather_facts(two).distinct_cards_for_email == 1


def test_a_first_order_far_above_the_store_average(store, product):
    big = make_product(store, "TV", price="300.00", stock=5)
    for _ in range(10):
        create_order(store, (product, 1))  # average 20.00
    order = create_order(store, (big, 1), email="new@example.com")
    assert "first_order_far_above_average" in [h.rule for h in fraud.assess(order).hits]
    repeat = create_order(store, (big, 1), email="new@example.com")
    assert "first_order_far_above_average" not in [h.rule for h in fraud.assess(repeat).hits]


def test_velocity_counts_stop_at_limit_plus_one_and_still_hit(store):
    plenty = make_product(store, "SOCK", price="5.00", stock=100)
    for _ in range(14):
        create_order(store, (plenty, 1), client_ip="203.0.113.7", card=CARD_DECLINED)
    last = create_order(store, (plenty, 1), client_ip="203.0.113.7")
    facts = fraud.gather_facts(last)
    assert facts.ip_orders_in_window == facts.ip_limit + 1 == 11, "bounded by the limit, not the traffic"
    assert "velocity_ip" in [h.rule for h in fraud.assess(last).hits]


def test_store_history_is_cached_per_store(store, product, settings):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.FRAUD_HISTORY_CACHE_SECONDS = 60
    cache.delete(f"fraud:history:{store.pk}:EUR")
    for _ in range(3):
        create_order(store, (product, 1))
    order = create_order(store, (product, 1), email="later@example.com")
    with CaptureQueriesContext(connection) as cold:
        first = fraud.gather_facts(order)
    with CaptureQueriesContext(connection) as warm:
        second = fraud.gather_facts(order)
    aggregate = [q for q in cold.captured_queries if "AVG(" in q["sql"]]
    assert len(aggregate) == 1 and not [q for q in warm.captured_queries if "AVG(" in q["sql"]]
    assert len(warm.captured_queries) == len(cold.captured_queries) - 1
    assert (second.store_average_total, second.store_order_count) == (
        first.store_average_total,
        first.store_order_count,
    )
    assert first.store_order_count == 3
    cache.delete(f"fraud:history:{store.pk}:EUR")


def test_counts_never_cross_stores(store, other_store, product):
    theirs = make_product(other_store, "TEE", price="20.00", stock=50)
    for _ in range(5):
        create_order(other_store, (theirs, 1), email="shared@example.com")
    mine = create_order(store, (product, 1), email="shared@example.com")
    assert fraud.gather_facts(mine).email_orders_in_window == 1


# ------------------------------------------------------------------------- operator review


def test_approve_continues_a_held_order_to_payment(store, product):
    order = create_order(store, (product, 1), country="IR")
    services.screen_order(store=store, order_id=order.pk)
    services.approve_order(store=store, order_id=order.pk, actor="ops")
    order.refresh_from_db()
    assert order.status == "payment_processing"
    assert Payment.all_stores.get(order=order).status == "pending"
    assert event(store, "fraud.reviewed", order).data["decision"] == "approve"


def test_reject_closes_a_held_order_and_releases_its_stock(store, product):
    order = create_order(store, (product, 4), country="IR")
    services.screen_order(store=store, order_id=order.pk)
    fraud_services.reject(store=store, order_id=order.pk, actor="ops", reason="stolen card")
    order.refresh_from_db()
    assert order.status == "rejected" and stock(product) == (10, 0)


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_review_decisions_only_apply_to_orders_in_review(store, product, action):
    order, _ = approved(store, product)
    with pytest.raises(InvalidTransition):
        getattr(fraud_services, action)(store=store, order_id=order.pk, actor="ops")


# ------------------------------------------------------------------------------- charging


def test_a_successful_charge_pays_the_order_and_commits_its_stock(store, product, gw):
    order, payment = approved(store, product)
    steps = run_to_end(store, payment)
    assert [s.kind for s in steps] == ["done"]
    order.refresh_from_db()
    assert payment.status == "succeeded" and payment.attempts == 1
    assert payment.gateway_charge_id == gw.ledger()[0]["id"]
    assert (order.status, order.payment_status, order.payment_attempts) == ("fulfilling", "succeeded", 1)
    assert order.paid_at is not None
    assert stock(product) == (8, 0)
    processed = event(store, "payment.processed", order)
    assert processed.data | {"from": None, "to": None, "reason": None} == {
        "from": None,
        "to": None,
        "reason": None,
        "amount": "40.00",
        "currency": "EUR",
        "charge_id": payment.gateway_charge_id,
        "attempts": 1,
        "order_gone": False,
    }
    attempt = PaymentAttempt.all_stores.get(payment=payment)
    assert (attempt.outcome, attempt.http_status, attempt.charge_id) == (
        "succeeded",
        201,
        payment.gateway_charge_id,
    )
    assert gw.ledger()[0]["idempotency_key"] == payment.idempotency_key
    assert gw.ledger()[0]["metadata"]["order_id"] == str(order.pk)


def test_a_decline_fails_at_once_without_retrying(store, product, gw):
    order, payment = approved(store, product, card=CARD_DECLINED)
    steps = run_to_end(store, payment)
    order.refresh_from_db()
    assert [s.kind for s in steps] == ["done"]
    assert (payment.status, payment.attempts, payment.error_code, payment.decline_code) == (
        "failed",
        1,
        "card_declined",
        "generic_decline",
    )
    assert (order.status, order.payment_status) == ("payment_failed", "failed")
    assert stock(product) == (10, 0)
    assert event(store, "payment.failed", order).data["decline_code"] == "generic_decline"
    assert "payment.retrying" not in topics(store, order)
    assert gw.ledger() == []


def test_a_processing_error_is_retried_then_fails_after_the_budget(store, product, gw, settings):
    order, payment = approved(store, product, card=CARD_PROCESSING_ERROR)
    steps = run_to_end(store, payment)
    assert [s.kind for s in steps] == ["retry"] * settings.PAYMENT_MAX_RETRIES + ["done"]
    assert all(0 <= s.delay <= settings.PAYMENT_RETRY_BACKOFF_MAX for s in steps[:-1])
    assert payment.status == "failed" and payment.attempts == settings.PAYMENT_MAX_RETRIES + 1
    assert payment.error_code == "processing_error"
    retrying = [e for e in topics(store, order) if e == "payment.retrying"]
    assert len(retrying) == settings.PAYMENT_MAX_RETRIES
    first = event(store, "payment.retrying", order)
    assert set(first.data) >= {"attempt", "max_attempts", "next_delay_seconds", "error"}
    assert first.data["max_attempts"] == settings.PAYMENT_MAX_RETRIES + 1
    order.refresh_from_db()
    assert (order.status, order.payment_attempts) == ("payment_failed", settings.PAYMENT_MAX_RETRIES + 1)
    assert breaker.state()["state"] == "closed"  # one bad card does not open the breaker for all


def test_after_read_timeouts_the_payment_keeps_asking_until_the_gateway_answers(store, product, gw, settings):
    settings.GATEWAY_READ_TIMEOUT = 0.2
    settings.BREAKER_FAILURE_THRESHOLD = 100
    order, payment = approved(store, product)
    gw.control(latency_ms=400)  # booked at once, answered too late, every time
    steps = [
        services.attempt_charge(store=store, payment_id=payment.pk) for _ in range(services.max_attempts())
    ]
    assert [s.kind for s in steps] == ["retry"] * services.max_attempts()  # budget spent, outcome unknown
    assert len(gw.ledger()) == 1
    assert event(store, "payment.retrying", order).data["outcome_unknown"] is True
    gw.control(latency_ms=0)
    steps = run_to_end(store, payment)
    assert steps[-1].outcome == "succeeded"
    assert payment.gateway_charge_id == gw.ledger()[0]["id"] and len(gw.ledger()) == 1
    assert payment.attempts > services.max_attempts()


def test_an_outcome_that_stays_unknown_fails_only_after_the_stretched_budget(store, product, gw, settings):
    settings.GATEWAY_READ_TIMEOUT = 0.1
    settings.BREAKER_FAILURE_THRESHOLD = 100
    order, payment = approved(store, product)
    gw.control(outage=True)
    # An outage answers 503 at once: a known outcome, so the normal budget applies.
    assert [s.kind for s in run_to_end(store, payment)][-1] == "done"
    assert (payment.attempts, payment.error_code) == (services.max_attempts(), "gateway_unavailable")
    gw.control(outage=False, latency_ms=300)
    order2, payment2 = approved(store, product)
    run_to_end(store, payment2)
    assert (payment2.status, payment2.error_code) == ("failed", "outcome_unknown")
    assert payment2.attempts == services.max_attempts_when_unknown()


def test_a_retrying_payment_shows_on_the_order(store, product, gw):
    order, payment = approved(store, product, card=CARD_PROCESSING_ERROR)
    assert services.attempt_charge(store=store, payment_id=payment.pk).kind == "retry"
    order.refresh_from_db()
    assert (order.payment_status, order.payment_attempts) == ("retrying", 1)


def test_an_expired_card_token_fails_without_calling_the_gateway(store, product, gw):
    order, payment = approved(store, product)
    vault.forget(store.pk, order.pk)
    run_to_end(store, payment)
    assert (payment.status, payment.error_code, payment.attempts) == ("failed", "card_token_expired", 0)
    assert gw.ledger() == []


def test_a_cancelled_order_is_not_charged(store, product, gw):
    order, payment = approved(store, product)
    transition(order, "cancelled", reason="customer")
    run_to_end(store, payment)
    assert (payment.status, payment.error_code) == ("failed", "order_cancelled")
    assert event(store, "payment.cancelled", order) is not None
    assert gw.ledger() == []


def test_a_finished_payment_is_left_alone(store, product, gw):
    order, payment = approved(store, product)
    run_to_end(store, payment)
    assert services.attempt_charge(store=store, payment_id=payment.pk).kind == "done"
    assert len(gw.ledger()) == 1 and PaymentAttempt.all_stores.filter(payment=payment).count() == 1


# -------------------------------------------------------------------------------- breaker


def wake(store, payment):
    """The waiting payment's wake-up (the charge task re-run with its wait's token)."""
    payment.refresh_from_db()
    return services.attempt_charge(store=store, payment_id=payment.pk, wake=services._wait_token(payment))


def release_and_charge(store):
    """What the release task does: end the longest waits, charge each with its slot."""
    steps = []
    for payment_id, _store_id, slot in services.release_waiting():
        steps.append(services.attempt_charge(store=store, payment_id=payment_id, slot=slot))
    return steps


def test_an_outage_opens_the_breaker_once_and_the_orders_wait_without_spending_attempts(
    store, product, gw, settings
):
    gw.control(outage=True)
    payments = [approved(store, product)[1] for _ in range(settings.BREAKER_FAILURE_THRESHOLD)]
    kinds = [services.attempt_charge(store=store, payment_id=p.pk).kind for p in payments]
    # the calls before the breaker opens are retried; the one that opens it starts waiting
    assert kinds == ["retry"] * (settings.BREAKER_FAILURE_THRESHOLD - 1) + ["wait"]
    assert breaker.state()["state"] == "open"
    assert topics(store).count("gateway.down") == 1

    # the others meet the open breaker: they wait too, no call, no attempt row
    steps = [services.attempt_charge(store=store, payment_id=p.pk) for p in payments[:-1]]
    assert {s.kind for s in steps} == {"wait"} and all(
        0 < s.delay <= settings.PAYMENT_WAIT_WAKEUP_SECONDS for s in steps
    )
    for _ in range(3):
        assert wake(store, payments[0]).kind == "wait"
    payments[0].refresh_from_db()
    assert payments[0].attempts == 1 and payments[0].waiting_since is not None
    assert PaymentAttempt.all_stores.filter(payment=payments[0]).count() == 1  # the one real call
    assert not PaymentAttempt.all_stores.filter(outcome="breaker_open").exists()
    order = payments[0].order
    order.refresh_from_db()
    assert order.payment_status == "waiting"
    assert [
        e.data["reason"] for e in Event.all_stores.filter(topic="payment.waiting", order_id=order.pk)
    ] == ["breaker_open"]  # one event when the wait starts, none per wake-up

    gw.control(outage=False)
    breaker.client().set(breaker.K_OPEN_UNTIL, 0)  # cool-down over: the next wake-up probes
    assert wake(store, payments[0]).release is True  # the probe (a lookup, no charge) closed it
    assert breaker.state()["state"] == "closed" and topics(store).count("gateway.up") == 1
    assert {s.outcome for s in release_and_charge(store)} == {"succeeded"}
    assert {p.status for p in Payment.all_stores.filter(pk__in=[p.pk for p in payments])} == {"succeeded"}
    assert topics(store).count("payment.resumed") == len(payments)
    assert event(store, "gateway.down").data["error"] == "gateway_unavailable"


def test_an_outage_longer_than_the_retry_budget_completes_counting_only_calls(store, product, gw, settings):
    gw.control(outage=True)
    for _ in range(settings.BREAKER_FAILURE_THRESHOLD - 1):
        breaker.record_failure(store.pk)
    order, payment = approved(store, product)
    assert services.attempt_charge(store=store, payment_id=payment.pk).kind == "wait"
    for _ in range(3 * services.max_attempts()):  # many cool-downs: each wake-up probes, fails
        breaker.client().set(breaker.K_OPEN_UNTIL, 0)
        assert wake(store, payment).kind == "wait"
    payment.refresh_from_db()
    assert payment.attempts == 1 and payment.status == "processing"

    gw.control(outage=False)
    breaker.client().set(breaker.K_OPEN_UNTIL, 0)
    assert wake(store, payment).release
    assert [s.outcome for s in release_and_charge(store)] == ["succeeded"]
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.attempts, order.status) == ("succeeded", 2, "fulfilling")
    assert PaymentAttempt.all_stores.filter(payment=payment).count() == payment.attempts
    assert len(gw.ledger(order_id=str(order.pk))) == 1


def test_an_order_still_waiting_when_its_window_ends_fails_with_the_reason(store, product, gw):
    gw.control(outage=True)
    breaker.client().set(breaker.K_OPEN_UNTIL, 9e12)  # open for good
    order, payment = approved(store, product)
    assert stock(product)[1] == 2
    assert services.attempt_charge(store=store, payment_id=payment.pk).kind == "wait"
    payment.refresh_from_db()
    Payment.all_stores.filter(pk=payment.pk).update(
        waiting_since=timezone.now() - timedelta(minutes=7), window_ends_at=timezone.now()
    )
    step = services.attempt_charge(store=store, payment_id=payment.pk, wake=services._wait_token(payment))
    assert step.outcome == "wait_over"  # that wake-up belonged to the wait as it was
    assert wake(store, payment).outcome == "failed"
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.error_code, payment.attempts) == ("failed", "gateway_unavailable", 0)
    assert payment.last_error == "the gateway was unavailable for 7 minutes"
    assert (order.status, order.payment_status) == ("payment_failed", "failed")
    assert stock(product)[1] == 0
    failed = event(store, "payment.failed", order)
    assert failed.data["message"] == "the gateway was unavailable for 7 minutes"
    assert gw.ledger() == []


def test_the_window_is_the_stores_setting_from_when_the_order_was_placed(store, product, settings):
    settings.PAYMENT_WINDOW_MINUTES = 45
    order, payment = approved(store, product)
    assert payment.window_ends_at == order.created_at + timedelta(minutes=45)
    store.settings = {"payment_window_minutes": 20}
    store.save()
    order, payment = approved(store, product)
    assert payment.window_ends_at == order.created_at + timedelta(minutes=20)


def test_release_is_first_come_first_served_within_the_free_gateway_slots(store, product, settings):
    settings.GATEWAY_MAX_CONCURRENT_CALLS = 2
    now = timezone.now()
    waiting = []
    for minutes_ago in (3, 5, 1, 4):  # waiting since: the 5-minute one goes first
        payment = approved(store, product)[1]
        Payment.all_stores.filter(pk=payment.pk).update(waiting_since=now - timedelta(minutes=minutes_ago))
        waiting.append(payment.pk)
    breaker.client().set(breaker.K_OPEN_UNTIL, 9e12)
    assert services.release_waiting() == []  # the gateway is still down
    breaker.reset()

    first = services.release_waiting()
    assert [pk for pk, _, _ in first] == [waiting[1], waiting[3]]
    assert services.release_waiting() == []  # both slots taken: nobody else goes yet
    breaker.release_slot(first[0][2])  # one charge finished
    assert [pk for pk, _, _ in services.release_waiting()] == [waiting[0]]
    assert Payment.all_stores.filter(waiting_since__isnull=False).count() == 1


def test_no_free_slot_means_a_short_free_wait(store, product, gw, settings):
    settings.GATEWAY_MAX_CONCURRENT_CALLS = 1
    held = breaker.acquire_slots(1)
    order, payment = approved(store, product)
    step = services.attempt_charge(store=store, payment_id=payment.pk)
    assert (step.kind, step.outcome) == ("wait", "no_slot") and step.delay <= 1.0
    payment.refresh_from_db()
    assert payment.attempts == 0 and gw.ledger() == []
    breaker.release_slot(held[0])
    assert services.attempt_charge(store=store, payment_id=payment.pk).outcome == "succeeded"


def test_a_store_meeting_the_open_breaker_is_told_it_is_down_and_up(
    store, other_store, product, gw, settings
):
    gw.control(outage=True)
    for _ in range(settings.BREAKER_FAILURE_THRESHOLD):
        services.attempt_charge(store=store, payment_id=approved(store, product)[1].pk)
    theirs = make_product(other_store, "TEE", price="20.00", stock=10)
    their_payment = approved(other_store, theirs)[1]
    assert services.attempt_charge(store=other_store, payment_id=their_payment.pk).kind == "wait"
    assert topics(other_store).count("gateway.down") == 1
    gw.control(outage=False)
    breaker.client().set(breaker.K_OPEN_UNTIL, 0)
    wake(other_store, their_payment)
    assert topics(other_store).count("gateway.up") == 1 and topics(store).count("gateway.up") == 1


# --------------------------------------------------------------------------------- refunds


def test_refunding_a_cancelled_paid_order(store, product, gw):
    order, payment = approved(store, product)
    run_to_end(store, payment)
    order.refresh_from_db()
    transition(order, "cancelled", reason="customer")
    payment.refresh_from_db()
    assert refunds.payment_needs_refund(payment)
    assert refunds.refund_remaining(store=store, payment_id=payment.pk).outcome == "refunded"
    payment.refresh_from_db()
    order.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("refunded", Decimal("40.00"))
    assert order.payment_status == "refunded"
    assert gw.ledger()[0]["refunded_amount"] == "40.00"
    refunded = event(store, "payment.refunded", order)
    assert refunded.data["amount"] == "40.00" and refunded.data["refund_id"] == payment.refund_id
    # again: nothing more is refunded
    assert refunds.refund_remaining(store=store, payment_id=payment.pk).kind == "done"
    assert len(gw.ledger(order_id=str(order.pk))) == 1


def test_a_charge_landing_after_cancellation_is_marked_for_refund(store, product, gw):
    order, payment = approved(store, product)
    attempt = services._begin_attempt(payment)  # the charge is in flight...
    Order.all_stores.filter(pk=order.pk).update(status="cancelled")  # ...when the order is cancelled
    payment.refresh_from_db()
    payment.store = store
    charge = services.gateway.create_charge(
        amount=payment.amount,
        currency="EUR",
        card_number="4242424242424242",
        idempotency_key=payment.idempotency_key,
    )
    services._succeed(payment, charge, attempt)
    payment = Payment.all_stores.select_related("order").get(pk=payment.pk)
    assert payment.status == "succeeded" and payment.order.status == "cancelled"
    attempt.refresh_from_db()
    assert attempt.outcome == "succeeded" and attempt.charge_id == charge.id
    assert refunds.payment_needs_refund(payment)
    # the event says so, and the refund handler's publish filter reads it there
    assert event(store, "payment.processed", order).data["order_gone"] is True


def test_a_charge_of_an_open_order_says_its_order_was_not_gone(store, product, gw):
    order, payment = approved(store, product)
    run_to_end(store, payment)
    assert event(store, "payment.processed", order).data["order_gone"] is False


# ------------------------------------------------------------------------------ reconciler


def test_the_reconciler_redrives_payments_nothing_has_touched_for_too_long(store, product, gw):
    _, stuck = approved(store, product)
    _, fresh = approved(store, product)
    order, to_refund = approved(store, product)
    run_to_end(store, to_refund)
    Order.all_stores.filter(pk=order.pk).update(status="cancelled")  # its refund message was lost
    long_ago = timezone.now() - timedelta(seconds=services.stuck_after_seconds() + 5)
    Payment.all_stores.filter(pk__in=[stuck.pk, to_refund.pk]).update(updated_at=long_ago)

    found = services.reconcile_payments()
    assert found == {"charge": [(stuck.pk, store.pk)], "refund": [(to_refund.pk, store.pk)]}
    assert fresh.pk not in [pk for pk, _ in found["charge"]]
    # touched: the next sweep leaves them to the re-driven tasks
    assert services.reconcile_payments() == {"charge": [], "refund": []}
