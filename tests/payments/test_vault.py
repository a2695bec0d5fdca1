"""The short-lived card vault (Redis via the Django cache): the PAN never touches PostgreSQL."""

import uuid

from django.core.cache import cache

from orderflow.core import vault
from tests.conftest import wait_until

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123", "extra": "x"}


def test_tokenize_then_detokenize_returns_the_charge_fields_only():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    assert vault.detokenize(7, order_id) == {
        "card_number": "4242424242424242",
        "exp_month": 12,
        "exp_year": 2031,
        "cvc": "123",
    }


def test_the_card_is_scoped_to_its_store_and_order():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    assert vault.detokenize(8, order_id) is None
    assert vault.detokenize(7, uuid.uuid4()) is None


def test_forget_drops_the_card():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    vault.forget(7, order_id)
    assert vault.detokenize(7, order_id) is None
    assert cache.get(f"vault:7:{order_id}") is None


def test_the_card_expires_after_its_ttl():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD, ttl=1)
    wait_until(lambda: vault.detokenize(7, order_id) is None, 5, message="vault entry to expire")
