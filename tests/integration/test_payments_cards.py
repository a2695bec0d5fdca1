"""End to end on a real worker and the real mock gateway: each test card ends in its state."""

import pytest

from orderflow.core import vault
from orders.models import Order
from payments.models import Payment, PaymentAttempt
from tests.conftest import wait_until
from tests.factories import make_product
from tests.payments.helpers import (
    CARD_DECLINED,
    CARD_INSUFFICIENT,
    CARD_OK,
    CARD_PROCESSING_ERROR,
    CARD_SLOW,
    charges_by_order,
    post_order,
    settled_payments,
    stock,
    topics,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_each_test_card_ends_in_its_state(celery_worker, gateway, api, store, settings):
    product = make_product(store, "TEE", price="12.50", stock=100)
    cards = [CARD_OK, CARD_DECLINED, CARD_INSUFFICIENT, CARD_PROCESSING_ERROR, CARD_SLOW]
    orders = {card: post_order(api, ("TEE", 2), card=card) for card in cards}

    wait_until(
        lambda: settled_payments(list(orders.values())) == len(cards), 60, message="every payment final"
    )

    def state(card):
        order = Order.all_stores.get(pk=orders[card].pk)
        payment = Payment.all_stores.get(order=order)
        return order, payment, list(PaymentAttempt.all_stores.filter(payment=payment).order_by("number"))

    max_attempts = settings.PAYMENT_MAX_RETRIES + 1
    ledger = charges_by_order(gateway.ledger())

    for card in (CARD_OK, CARD_SLOW):
        order, payment, attempts = state(card)
        assert order.paid_at is not None and order.payment_status == "succeeded"
        assert (payment.status, payment.attempts) == ("succeeded", 1)
        assert [c["id"] for c in ledger[str(order.pk)]] == [payment.gateway_charge_id]
        assert [a.outcome for a in attempts] == ["succeeded"]
        assert "payment.processed" in topics(store, order)

    for card, decline_code in ((CARD_DECLINED, "generic_decline"), (CARD_INSUFFICIENT, "insufficient_funds")):
        order, payment, attempts = state(card)
        assert (order.status, order.payment_status) == ("payment_failed", "failed")
        assert (payment.status, payment.error_code, payment.decline_code) == (
            "failed",
            "card_declined",
            decline_code,
        )
        assert [(a.outcome, a.http_status) for a in attempts] == [("declined", 402)]  # exactly one, no retry
        assert "payment.retrying" not in topics(store, order)
        assert str(order.pk) not in ledger

    order, payment, attempts = state(CARD_PROCESSING_ERROR)
    assert (order.status, payment.status, payment.error_code) == (
        "payment_failed",
        "failed",
        "processing_error",
    )
    assert payment.attempts == max_attempts == len(attempts)
    assert {a.outcome for a in attempts} == {"transient_error"}
    assert topics(store, order).count("payment.retrying") == settings.PAYMENT_MAX_RETRIES
    assert str(order.pk) not in ledger

    # two paid orders committed their stock, three released it
    assert stock(product) == (100 - 2 * 2, 0)
    # a paid order's card leaves the vault once the payment commits; a failed order's stays for a
    # retry (payments.retry) until the vault's TTL or a cancel
    wait_until(
        lambda: all(vault.detokenize(store.pk, orders[c].pk) is None for c in (CARD_OK, CARD_SLOW)),
        10,
        message="the paid orders' cards left the vault",
    )
    for card in (CARD_DECLINED, CARD_INSUFFICIENT, CARD_PROCESSING_ERROR):
        assert vault.detokenize(store.pk, orders[card].pk)["card_number"] == card
