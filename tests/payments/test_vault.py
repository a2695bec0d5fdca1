"""The short-lived card vault (Redis via the cache's client): the PAN never touches PostgreSQL, and
what sits in Redis is encrypted JSON without the CVC — never a pickle."""

import base64
import json
import pickle
import uuid

import pytest
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured

from orderflow.core import vault
from tests.conftest import wait_until

CARD = {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123", "extra": "x"}


def stored(store_id, order_id) -> bytes | None:
    """The raw bytes Redis holds for this order's card."""
    key = f"vault:{store_id}:{order_id}"
    return cache._cache.get_client(key).get(cache.make_and_validate_key(key))


def test_tokenize_then_detokenize_returns_the_charge_fields_only_never_the_cvc():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    card = vault.detokenize(7, order_id)
    assert card == {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031}


def test_the_stored_entry_is_fernet_encrypted_json_not_a_pickle(settings):
    settings.CARD_VAULT_KEY = Fernet.generate_key().decode()
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    raw = stored(7, order_id)
    assert not raw.startswith(b"\x80")
    assert b"4242" not in raw and b"cvc" not in raw
    card = json.loads(Fernet(settings.CARD_VAULT_KEY).decrypt(raw))
    assert card == {"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2031}


def test_without_a_configured_key_one_derived_from_secret_key_is_used(settings):
    settings.CARD_VAULT_KEY = ""
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    derived = Fernet(base64.urlsafe_b64encode(vault.derived_key(vault.VAULT_KEY_PURPOSE)))
    assert json.loads(derived.decrypt(stored(7, order_id)))["card_number"] == "4242424242424242"
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    assert vault.detokenize(7, order_id) is None  # another SECRET_KEY, another key: card gone


def test_a_rotated_key_list_still_reads_cards_written_under_the_old_key(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CARD_VAULT_KEY = old
    before = uuid.uuid4()
    vault.tokenize(7, before, CARD)
    settings.CARD_VAULT_KEY = f"{new}, {old}"
    after = uuid.uuid4()
    vault.tokenize(7, after, CARD)
    assert vault.detokenize(7, before)["card_number"] == "4242424242424242"
    assert vault.detokenize(7, after)["card_number"] == "4242424242424242"
    Fernet(new).decrypt(stored(7, after))  # the first key of the list encrypts


def test_a_card_under_a_key_rotated_away_reads_as_gone(settings):
    settings.CARD_VAULT_KEY = Fernet.generate_key().decode()
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    settings.CARD_VAULT_KEY = Fernet.generate_key().decode()
    assert vault.detokenize(7, order_id) is None


@pytest.mark.parametrize(
    "raw",
    [
        pickle.dumps({"card_number": "4242424242424242", "cvc": "123"}),  # the format before
        b"gAAAAAB-tampered",
        b"not a token at all",
    ],
)
def test_an_old_pickled_or_tampered_entry_reads_as_gone_and_is_never_unpickled(raw, monkeypatch):
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled a vault entry"))
    order_id = uuid.uuid4()
    key = f"vault:7:{order_id}"
    cache._cache.get_client(key, write=True).set(cache.make_and_validate_key(key), raw, ex=60)
    assert vault.detokenize(7, order_id) is None


def test_a_tampered_token_reads_as_gone():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    raw = bytearray(stored(7, order_id))
    raw[40] = ord("A") if raw[40] != ord("A") else ord("B")
    key = f"vault:7:{order_id}"
    cache._cache.get_client(key, write=True).set(cache.make_and_validate_key(key), bytes(raw), ex=60)
    assert vault.detokenize(7, order_id) is None


def test_a_malformed_vault_key_is_a_configuration_error_naming_the_setting(settings):
    settings.CARD_VAULT_KEY = "not-a-fernet-key"
    with pytest.raises(ImproperlyConfigured, match="CARD_VAULT_KEY"):
        vault.tokenize(7, uuid.uuid4(), CARD)


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
    assert stored(7, order_id) is None


def test_the_card_keeps_the_ttl_it_is_given():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD)
    key = f"vault:7:{order_id}"
    ttl = cache._cache.get_client(key).ttl(cache.make_and_validate_key(key))
    assert vault.DEFAULT_TTL_SECONDS - 5 < ttl <= vault.DEFAULT_TTL_SECONDS == 3600


def test_the_card_expires_after_its_ttl():
    order_id = uuid.uuid4()
    vault.tokenize(7, order_id, CARD, ttl=1)
    wait_until(lambda: vault.detokenize(7, order_id) is None, 5, message="vault entry to expire")


@pytest.mark.django_db
def test_intake_with_a_malformed_vault_key_fails_loudly_not_as_a_redis_outage(api, settings):
    from tests.factories import make_product, order_body
    from tests.orders.helpers import place

    make_product(api.store, "SKU-1", stock=5)
    settings.CARD_VAULT_KEY = "not-a-fernet-key"
    with pytest.raises(ImproperlyConfigured, match="CARD_VAULT_KEY"):
        place(api, order_body(("SKU-1", 1)))
