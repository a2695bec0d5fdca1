"""The gateway client against the real mock gateway process: what is transient, what is final."""

import uuid
from decimal import Decimal

import pytest

from payments import gateway
from tests.payments.helpers import (
    CARD_DECLINED,
    CARD_INSUFFICIENT,
    CARD_OK,
    CARD_PROCESSING_ERROR,
    CARD_SLOW,
)


def charge(card=CARD_OK, key=None, amount="12.50"):
    key = key or f"charge-{uuid.uuid4()}"
    return gateway.create_charge(
        amount=Decimal(amount),
        currency="EUR",
        card_number=card,
        idempotency_key=key,
        description="test",
        metadata={"order_id": key.removeprefix("charge-"), "store": "store-a"},
    )


def test_a_good_card_is_charged(gw):
    result = charge()
    assert result.id.startswith("ch_") and result.status == "succeeded"
    assert result.amount == Decimal("12.50") and result.currency == "EUR"
    assert result.call.http_status == 201 and result.call.latency_ms is not None
    assert [c["id"] for c in gw.ledger()] == [result.id]


def test_the_same_idempotency_key_returns_the_same_charge(gw):
    key = f"charge-{uuid.uuid4()}"
    first, second = charge(key=key), charge(key=key)
    assert first.id == second.id
    assert len(gw.ledger()) == 1


@pytest.mark.parametrize(
    "card,decline_code", [(CARD_DECLINED, "generic_decline"), (CARD_INSUFFICIENT, "insufficient_funds")]
)
def test_a_decline_is_final_with_its_decline_code(gw, card, decline_code):
    with pytest.raises(gateway.PaymentDeclined) as info:
        charge(card)
    assert info.value.code == "card_declined"
    assert info.value.decline_code == decline_code
    assert info.value.call.http_status == 402
    assert CARD_DECLINED not in str(info.value) and card not in str(info.value)
    assert gw.ledger() == []


def test_a_processing_error_is_transient_but_does_not_blame_the_gateway(gw):
    with pytest.raises(gateway.GatewayError) as info:
        charge(CARD_PROCESSING_ERROR)
    assert info.value.code == "processing_error" and info.value.call.http_status == 500
    assert not info.value.counts_against_gateway


def test_an_outage_is_transient_and_blames_the_gateway(gw):
    gw.control(outage=True)
    with pytest.raises(gateway.GatewayError) as info:
        charge()
    assert info.value.call.http_status == 503 and info.value.counts_against_gateway
    assert not info.value.timeout and not info.value.outcome_unknown


def test_a_read_timeout_is_transient_and_the_retry_finds_the_charge(gw, settings):
    settings.GATEWAY_READ_TIMEOUT = 0.3
    key = f"charge-{uuid.uuid4()}"
    with pytest.raises(gateway.GatewayError) as info:
        charge(CARD_SLOW, key=key)  # the gateway books it, then answers slowly
    assert info.value.timeout and info.value.code == "timeout" and info.value.outcome_unknown
    assert len(gw.ledger()) == 1
    retried = None
    for _ in range(20):  # the gateway holds the key until its slow answer is out; then replays at once
        try:
            retried = charge(CARD_SLOW, key=key)
            break
        except gateway.GatewayError as exc:
            assert exc.timeout
    assert retried is not None
    assert retried.id == gw.ledger()[0]["id"]
    assert len(gw.ledger()) == 1


def test_an_unreachable_gateway_is_a_transient_connection_error(settings):
    settings.GATEWAY_URL = "http://127.0.0.1:9"  # discard port: nobody listens
    with pytest.raises(gateway.GatewayError) as info:
        charge()
    assert info.value.code == "connection_error" and info.value.counts_against_gateway
    assert not info.value.outcome_unknown  # refused: the request never left, nothing was charged


def test_a_refund_is_idempotent_by_its_key(gw):
    charged = charge()
    key = f"refund-{uuid.uuid4()}"
    first = gateway.create_refund(charge_id=charged.id, amount=Decimal("12.50"), idempotency_key=key)
    second = gateway.create_refund(charge_id=charged.id, amount=Decimal("12.50"), idempotency_key=key)
    assert first.id == second.id and first.amount == Decimal("12.50")
    assert gw.ledger()[0]["refunded_amount"] == "12.50"


def test_refunding_an_unknown_charge_is_final(gw):
    with pytest.raises(gateway.PaymentError) as info:
        gateway.create_refund(charge_id="ch_nope", amount=Decimal("1.00"), idempotency_key="refund-x")
    assert info.value.code == "charge_not_found" and not isinstance(info.value, gateway.GatewayError)
