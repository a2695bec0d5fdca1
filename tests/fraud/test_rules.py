"""Each fraudGuard rule on its own case (pure functions of Facts), and how hits become a decision."""

from dataclasses import replace
from decimal import Decimal

import pytest

from fraud import rules

CLEAN = rules.Facts(
    total=Decimal("50.00"),
    currency="EUR",
    amount_limit=Decimal("1000.00"),
    email="ada@example.com",
    shipping_country="DE",
    high_risk_countries=frozenset({"KP", "IR"}),
    window_minutes=60,
    email_orders_in_window=1,
    email_limit=3,
    card="visa ****4242",
    card_orders_in_window=1,
    card_limit=5,
    ip="203.0.113.7",
    ip_orders_in_window=1,
    ip_limit=10,
    distinct_cards_for_email=1,
    cards_limit=2,
    prior_orders_for_email=0,
    store_average_total=Decimal("40.00"),
    store_order_count=100,
    first_order_multiplier=Decimal("5"),
    first_order_min_history=10,
)

CASES = [
    ("amount_over_limit", {"total": Decimal("1000.01")}),
    ("velocity_email", {"email_orders_in_window": 4}),
    ("velocity_card", {"card_orders_in_window": 6}),
    ("velocity_ip", {"ip_orders_in_window": 11}),
    ("high_risk_country", {"shipping_country": "kp"}),
    ("disposable_email", {"email": "x@Mailinator.com"}),
    ("many_cards_for_email", {"distinct_cards_for_email": 3}),
    ("first_order_far_above_average", {"total": Decimal("200.01")}),
]


def test_a_clean_order_hits_no_rule_and_is_approved():
    result = rules.evaluate(CLEAN, review_threshold=50, reject_threshold=80)
    assert (result.score, result.decision, result.hits) == (0, "approve", [])


@pytest.mark.parametrize("rule,changes", CASES, ids=[c[0] for c in CASES])
def test_each_rule_triggers_on_its_case_with_its_points(rule, changes):
    hit = getattr(rules, rule)(replace(CLEAN, **changes))
    assert hit is not None and hit.rule == rule
    assert hit.points == rules.POINTS[rule] > 0
    assert hit.detail
    assert getattr(rules, rule)(CLEAN) is None


def test_velocity_limits_are_inclusive_of_the_limit():
    at_limit = replace(CLEAN, email_orders_in_window=3, card_orders_in_window=5, ip_orders_in_window=10)
    assert rules.velocity_email(at_limit) is None
    assert rules.velocity_card(at_limit) is None
    assert rules.velocity_ip(at_limit) is None


def test_rules_without_data_do_not_fire():
    unknown = replace(
        CLEAN,
        amount_limit=None,
        card="",
        card_orders_in_window=99,
        ip=None,
        ip_orders_in_window=99,
        store_average_total=None,
        total=Decimal("999.00"),
    )
    assert rules.amount_over_limit(unknown) is None
    assert rules.velocity_card(unknown) is None
    assert rules.velocity_ip(unknown) is None
    assert rules.first_order_far_above_average(unknown) is None


def test_first_order_rule_needs_a_first_order_and_enough_store_history():
    big = replace(CLEAN, total=Decimal("500.00"))
    assert rules.first_order_far_above_average(big) is not None
    assert rules.first_order_far_above_average(replace(big, prior_orders_for_email=1)) is None
    assert rules.first_order_far_above_average(replace(big, store_order_count=9)) is None


def test_score_is_the_sum_of_hits_and_picks_the_decision():
    review = rules.evaluate(replace(CLEAN, shipping_country="IR"), review_threshold=50, reject_threshold=80)
    assert (review.score, review.decision) == (50, "review")
    assert review.rules == [{"rule": "high_risk_country", "points": 50, "detail": review.hits[0].detail}]
    reject = rules.evaluate(
        replace(CLEAN, shipping_country="IR", email="a@yopmail.com"), review_threshold=50, reject_threshold=80
    )
    assert (reject.score, reject.decision) == (80, "reject")
    assert {h["rule"] for h in reject.rules} == {"high_risk_country", "disposable_email"}


def test_score_is_capped_at_100():
    changes = {k: v for _, case in CASES for k, v in case.items()}
    everything = replace(CLEAN, **{**changes, "total": Decimal("1500.00")})
    result = rules.evaluate(everything, review_threshold=50, reject_threshold=80)
    assert result.score == 100 and result.decision == "reject"
    assert len(result.hits) == len(rules.RULES)


@pytest.mark.parametrize(
    "score,decision", [(0, "approve"), (49, "approve"), (50, "review"), (79, "review"), (80, "reject")]
)
def test_thresholds_decide(score, decision):
    assert rules.decide(score, review_threshold=50, reject_threshold=80) == decision
