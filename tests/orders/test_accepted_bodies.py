"""Valid bodies at the edges of intake's declared limits are accepted (202) and stored as the
serializer normalises them: the e-mail lower-cased, the country upper-cased, the card reduced to
brand and last four, text kept as sent (DRF trims surrounding spaces), numbers sent as strings
where the contract takes text. Bad bodies and their error paths: test_validation.py."""

from __future__ import annotations

import pytest

from orders.api import MAX_LINES, MAX_QUANTITY, METADATA_MAX_BYTES, METADATA_MAX_KEYS
from orders.models import Order
from tests.conftest import StoreClient
from tests.factories import make_key, make_product, make_store, order_body
from tests.orders.helpers import place, row_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(store):
    for sku in ("A", "B", "Ü-1"):
        make_product(store, sku, stock=MAX_QUANTITY)


def _stored(r) -> Order:
    assert r.status_code == 202, r.content
    return Order.all_stores.prefetch_related("items").get(pk=r.json()["id"])


def test_the_largest_order_the_limits_allow_is_accepted(api, store):
    for i in range(MAX_LINES):
        make_product(store, f"S{i}", stock=MAX_QUANTITY)
    body = order_body(*[(f"S{i}", MAX_QUANTITY if i == 0 else 1) for i in range(MAX_LINES)])
    body["metadata"] = {f"k{i}": i for i in range(METADATA_MAX_KEYS)}
    order = _stored(place(api, body))
    assert order.items.count() == MAX_LINES
    assert order.items.get(sku="S0").quantity == MAX_QUANTITY
    assert len(order.metadata) == METADATA_MAX_KEYS


def test_metadata_up_to_its_byte_limit_is_kept_as_sent(api, catalogue):
    metadata = {"cart": "x" * (METADATA_MAX_BYTES - len('{"cart": ""}'))}
    order = _stored(place(api, order_body(("A", 1), metadata=metadata)))
    assert order.metadata == metadata


def test_values_are_stored_as_the_serializer_normalises_them(api, catalogue):
    body = order_body(("Ü-1", 2), ("B", 1), card="4242 4242 4242 4242", email="Ada.Lovelace@Example.COM")
    body["customer"]["name"] = "  Zoë Ünal "
    body["shipping_address"].update(country="fr", postal_code=75001, line2="")
    body["extra_top_level_key"] = "ignored"
    r = place(api, body)
    order = _stored(r)
    assert (order.customer_email, order.customer_name) == ("ada.lovelace@example.com", "Zoë Ünal")
    assert (order.shipping_country, order.shipping_postal_code) == ("FR", "75001")
    assert (order.card_brand, order.card_last4) == ("visa", "4242")
    assert sorted(order.items.values_list("sku", "quantity")) == [("B", 1), ("Ü-1", 2)]
    assert "extra_top_level_key" not in r.json() and "extra_top_level_key" not in order.metadata


def test_currency_and_metadata_may_be_left_out(api, catalogue, store):
    body = {k: v for k, v in order_body(("A", 1)).items() if k not in ("currency", "metadata")}
    order = _stored(place(api, body))
    assert (order.currency, order.metadata) == (store.currency, {})


@pytest.mark.parametrize(
    "payment",
    [
        {
            "card_number": "378282246310005",
            "exp_month": 1,
            "exp_year": 2100,
            "cvc": "1234",
        },  # Amex, 4-digit CVC
        {"card_number": "4242-4242-4242-4242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
    ],
)
def test_cards_at_the_edges_of_the_rules_are_accepted(api, catalogue, payment):
    order = _stored(place(api, order_body(("A", 1), payment=payment)))
    assert order.card_last4 == payment["card_number"][-4:]


def test_one_over_each_limit_is_refused_and_writes_nothing(api, catalogue):
    before = row_counts()
    over = [
        ("items[0].quantity", order_body(("A", MAX_QUANTITY + 1))),
        ("metadata", order_body(("A", 1), metadata={f"k{i}": i for i in range(METADATA_MAX_KEYS + 1)})),
        ("metadata", order_body(("A", 1), metadata={"cart": "x" * METADATA_MAX_BYTES})),
    ]
    for path, body in over:
        r = place(api, body)
        assert r.status_code == 400, r.content
        assert path in r.json()["error"]["fields"]
    assert row_counts() == before


def test_each_store_is_held_to_its_own_currency(api, catalogue):
    """The prebuilt serializer has no store: the store's currency is checked per request."""
    dollars = make_store("dollar-store", currency="USD")
    make_product(dollars, "A", currency="USD", stock=5)
    usd = order_body(("A", 1), currency="USD")
    assert place(StoreClient(dollars, make_key(dollars)), usd).status_code == 202
    refused = place(api, usd)
    assert refused.status_code == 400
    assert refused.json()["error"]["fields"] == {"currency": ["This store sells in EUR."]}
