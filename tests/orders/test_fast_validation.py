"""The intake's fast validation path accepts only what OrderCreateSerializer accepts, and returns
exactly its validated_data; anything else falls through to the serializer (None)."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.api import OrderCreateSerializer
from orders.validation import accept
from tests.factories import order_body

STORE = SimpleNamespace(currency="EUR")


def serializer_result(body):
    serializer = OrderCreateSerializer(data=body, context={"store": STORE})
    return serializer.validated_data if serializer.is_valid() else None


def as_plain(value):
    """OrderedDicts and dicts compare equal already; lists of them too — keep it explicit."""
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_plain(v) for v in value]
    return value


VALID = [
    order_body(("A", 1)),
    order_body(("A", 1), ("B", 1000), ("C", 3)),
    order_body(("A", 2), email="Ada.Lovelace@Example.COM"),
    order_body(("A", 1), metadata={"cart": "abc", "n": 3, "nested": {"x": [1, 2]}}),
    order_body(
        ("Ü-1", 1), card="4242 4242 4242 4242", customer={"email": "z@example.de", "name": "Zoë Ünal"}
    ),
    {k: v for k, v in order_body(("A", 1)).items() if k not in ("currency", "metadata")},
    order_body(
        ("A", 1),
        shipping_address={"line1": "x", "line2": "", "city": "y", "postal_code": "1", "country": "fr"},
    ),
    order_body(
        ("A", 1), payment={"card_number": "378282246310005", "exp_month": 1, "exp_year": 2100, "cvc": "1234"}
    ),
    order_body(*[(f"S{i}", 1) for i in range(100)], extra_top_level_key="ignored"),
]


@pytest.mark.parametrize("body", VALID)
def test_fast_path_accepts_valid_bodies_with_the_serializers_result(body):
    fast = accept(copy.deepcopy(body), STORE.currency)
    assert fast is not None
    assert as_plain(fast) == as_plain(serializer_result(copy.deepcopy(body)))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["customer"].update(name=" Ada "),  # DRF trims: the serializer decides
        lambda b: b["items"][0].update(quantity="2"),
        lambda b: b["items"][0].update(quantity=True),
        lambda b: b["items"].append(dict(b["items"][0])),  # duplicate SKU
        lambda b: b["shipping_address"].update(country="XX"),
        lambda b: b["shipping_address"].update(postal_code=10115),  # DRF coerces ints to str
        lambda b: b["payment"].update(card_number="4242424242424241"),  # Luhn
        lambda b: b["payment"].update(exp_year=2001),
        lambda b: b["payment"].update(cvc="12a"),
        lambda b: b.update(currency="USD"),
        lambda b: b.update(metadata=None),
        lambda b: b.update(metadata={f"k{i}": i for i in range(51)}),
        lambda b: b.update(metadata={"k": "x" * 5000}),
        lambda b: b["customer"].update(email="not-an-email"),
        lambda b: b.update(items=[]),
        lambda b: b.pop("payment"),
    ],
)
def test_fast_path_steps_aside_for_anything_unusual(change):
    body = order_body(("A", 1), ("B", 2))
    change(body)
    assert accept(copy.deepcopy(body), STORE.currency) is None


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 3000) | st.floats(allow_nan=False) | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
TEXTS = st.sampled_from([
    "", " ", "a", " a", "A1", "DE", "de", "ß", "EUR", "eur", "123", "1234", "\x00", "x" * 201, "a@b.co",
    "A@B.CO", "4242424242424242", "4242-4242-4242-4242", "12345678903555", "\ud800", "١٢٣", "Zoë",
])  # fmt: skip
PATHS = [
    ("customer", "email"), ("customer", "name"), ("items", 0, "sku"), ("items", 0, "quantity"),
    ("items", 1, "sku"), ("shipping_address", "line1"), ("shipping_address", "line2"),
    ("shipping_address", "city"), ("shipping_address", "postal_code"), ("shipping_address", "country"),
    ("payment", "card_number"), ("payment", "exp_month"), ("payment", "exp_year"), ("payment", "cvc"),
    ("currency",), ("metadata",), ("items",), ("customer",), ("payment",),
]  # fmt: skip


def _set(body, path, value):
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(PATHS), JSONISH | TEXTS), min_size=1, max_size=3))
def test_fuzzed_bodies_the_fast_path_accepts_are_the_serializers_too(changes):
    body = order_body(("A", 1), ("B", 2))
    for path, value in changes:
        try:
            _set(body, path, value)
        except (KeyError, IndexError, TypeError):
            continue
    fast = accept(copy.deepcopy(body), STORE.currency)
    if fast is not None:
        assert as_plain(fast) == as_plain(serializer_result(copy.deepcopy(body)))
